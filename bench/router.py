#!/usr/bin/env python3
"""The router bench: flowtop on a router-class CPU, beside conntrack and python3 in the same run.

    python3 bench/router.py [--arch mipsel] [--flows 16000] [--remotes 250] [--live 60]
                            [--base REF] [--host]                          (as root)

Boots the VM of scripts/vm/ (mipsel: ``-M malta -m 128``, a 32-bit router's CPU
and memory; built and cached under build/vm on first use) and runs
bench/router_guest.py there: N flows in the VM's own conntrack table, then
``python3 -c pass``, ``conntrack -L``, and per .pyz ``--version``, ``--once``
text/``--json`` with and without ``-n -G`` (wall, CPU, peak RSS), and the live
view in tmux (first frame, steady CPU %, VmHWM, key-to-screen).  The .pyz
variants: ``src`` (sources only, what build_pyz made before --python), ``pyc``
(bytecode for the guest's Python), and with ``--base REF`` a sources-only .pyz
of that git revision.  ``--host`` runs the same guest script on this machine,
in a fresh network namespace, for the ratio here.  The emulated CPU's speed
follows this machine's load: compare within one run only.
"""

import argparse
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "scripts", "vm"))

import vm  # noqa: E402

GUEST_PYTHON = {"mipsel": "3.11", "s390x": "3.11", "armhf": "3.11"}    # Debian bookworm's


def build_pyzs(dest, python, base=None, which=("src", "pyc"), base_pyc=False):
    out = []
    build = os.path.join(REPO, "scripts", "build_pyz.py")
    if base:
        with tempfile.TemporaryDirectory() as tree:
            subprocess.run("git -C %s archive %s flowtop scripts/build_pyz.py | tar -C %s -xf -"
                           % (REPO, base, tree), shell=True, check=True)
            path = os.path.join(dest, "base.pyz")
            subprocess.run([sys.executable, os.path.join(tree, "scripts", "build_pyz.py"),
                            "-o", path] + (["--python", python] if base_pyc and python else []),
                           check=True, stdout=subprocess.DEVNULL)
            out.append(("base", path))
    path = os.path.join(dest, "src.pyz")
    if "src" in which:
        subprocess.run([sys.executable, build, "-o", path], check=True, stdout=subprocess.DEVNULL)
        out.append(("src", path))
    if python and "pyc" in which:
        path = os.path.join(dest, "pyc.pyz")
        subprocess.run([sys.executable, build, "--python", python, "-o", path], check=True,
                       stdout=subprocess.DEVNULL)
        out.append(("pyc", path))
    return out


def gnu_time(arch, dest):
    """GNU time for ``arch`` (Debian's ``time`` package), unpacked into dest."""
    a = vm.ARCHES[arch]
    deb = vm.fetch_deb(os.path.join(vm.BUILD, a.name), a.name, "time")
    with tempfile.TemporaryDirectory() as t:
        subprocess.run(["dpkg-deb", "-x", deb, t], check=True)
        shutil.copy(os.path.join(t, "usr", "bin", "time"), os.path.join(dest, "time"))
    return os.path.join(dest, "time")


def guest_args(args, pyzs, where):
    out = ["--flows", str(args.flows), "--remotes", str(args.remotes), "--live", str(args.live),
           "--modes", args.modes, "--live-all", "1" if args.live_all else "0",
           "--live-empty", str(args.live_empty), "--profile", str(args.profile),
           "--rounds", str(args.rounds), "--cprofile", str(args.cprofile)]
    for name, path in pyzs:
        out += ["--pyz", "%s=%s/%s" % (name, where, os.path.basename(path))]
    return out


def in_vm(args):
    a = vm.ARCHES[args.arch]
    vm.build(a)
    payload = tempfile.mkdtemp(prefix=args.tag + "-", dir=os.path.join(vm.BUILD))
    # per tag: two benches (helpers) at once must not share a result directory
    result = os.path.join(vm.BUILD, "%s-%s-result" % (args.tag.replace("ftbench-", ""), args.arch))
    try:
        pyzs = build_pyzs(payload, GUEST_PYTHON[args.arch], args.base, args.pyz.split(","),
                          args.base_pyc)
        gnu_time(args.arch, payload)
        shutil.copy(os.path.join(HERE, "router_guest.py"), payload)
        shutil.copy(os.path.join(HERE, "live_profile.py"), payload)
        with open(os.path.join(payload, "run.sh"), "w") as f:
            f.write("modprobe nf_conntrack && sysctl -q -w net.netfilter.nf_conntrack_max=65536\n"
                    "sysctl -q -w net.netfilter.nf_conntrack_buckets=16384 2>/dev/null\n"
                    "cat /proc/cpuinfo | grep -m1 -i -E 'model|cpu' \n"
                    "GNU_TIME=/run/payload/time exec python3 router_guest.py "
                    "$FLOWTOP_VM_OUT/result.json %s\n"
                    % " ".join(shlex.quote(a) for a in guest_args(args, pyzs, "/run/payload")))
        shutil.rmtree(result, ignore_errors=True)
        status = vm.boot(a, payload, result, timeout=args.timeout, echo=True)
    finally:
        shutil.rmtree(payload, ignore_errors=True)
    path = os.path.join(result, "result.json")
    if not os.path.exists(path):
        sys.exit("router bench: no result (exit %d); see %s/serial.txt" % (status, result))
    with open(path) as f:
        return json.load(f)


def on_host(args):
    work = tempfile.mkdtemp(prefix=args.tag + "-host-")
    ns = "%s-%s" % (args.tag, secrets.token_hex(3))
    try:
        pyzs = build_pyzs(work, "%d.%d" % sys.version_info[:2], args.base, args.pyz.split(","),
                          args.base_pyc)
        out = os.path.join(work, "result.json")
        subprocess.run(["ip", "netns", "add", ns], check=True)
        env = dict(os.environ, GNU_TIME=shutil.which("time") or "")
        subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", "ip link set lo up && exec \"$@\"",
                        "-", sys.executable, os.path.join(HERE, "router_guest.py"), out]
                       + guest_args(args, pyzs, work), check=True, env=env)
        keep = os.path.join(vm.BUILD, "%s-host-result" % args.tag.replace("ftbench-", ""))
        os.makedirs(keep, exist_ok=True)
        for name in os.listdir(work):
            if name.startswith("profile-"):
                shutil.copy(os.path.join(work, name), keep)
        with open(out) as f:
            return json.load(f)
    finally:
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def table(res):
    base = res.get("python -c pass (again)") or res.get("python -c pass")
    ct = res.get("conntrack -L -o extended")
    lines = ["%s, kernel %s, Python %s, %d flows to %d remote addresses (inserted %s)" % (
        res["machine"], res["kernel"], res["python"], res["flows"], res["remotes"],
        res.get("fill", {}).get("inserted")),
        "| measurement | wall s | CPU s | peak RSS MiB | × python -c pass | × conntrack -L -o ext |",
        "|---|---|---|---|---|---|"]
    for k, v in res.items():
        if not isinstance(v, dict) or "wall" not in v:
            continue
        lines.append("| %s | %.2f | %.2f | %.1f | %.1f | %.1f |" % (
            k, v["wall"], v["cpu"], v["rss_kib"] / 1024, v["wall"] / base["wall"],
            v["wall"] / ct["wall"] if ct and ct["wall"] else float("nan")))
    fastest = {}                # over --rounds (and --version's "again")
    for k, v in res.items():
        if isinstance(v, dict) and "wall" in v:
            name = k.split(" #")[0].replace(" (again)", "")
            fastest[name] = min(fastest.get(name, v["wall"]), v["wall"])
    if len(fastest) < sum(1 for v in res.values() if isinstance(v, dict) and "wall" in v):
        lines.append("fastest: " + "; ".join("%s %.2f s (%.2fx pass)" % (
            k, w, w / fastest["python -c pass"]) for k, w in fastest.items()))
    for k, v in res.items():
        if isinstance(v, dict) and "first_frame" in v:
            lines.append("%s: first frame %s s (first rows %s s, progress at 95 %%: %s s), steady "
                         "CPU %s %%, VmHWM %.1f MiB, key-to-screen %s s (%s)" % (
                             k, v.get("first_frame"), v.get("first_rows"), v.get("progress_95"),
                             v.get("cpu_pct"),
                             (v.get("vmhwm_kib") or 0) / 1024, v.get("key_to_screen"),
                             v.get("keys")))
    if "python loops" in res:
        lines.append("python loops, CPU s: " + ", ".join(
            "%s %s" % kv for kv in res["python loops"].items()))
    for k, v in res.items():
        if k.endswith(" cProfile"):
            lines += [k + ":"] + ["    " + line for line in v]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="mipsel", choices=sorted(vm.ARCHES))
    ap.add_argument("--flows", type=int, default=16000)
    ap.add_argument("--remotes", type=int, default=250)
    ap.add_argument("--live", type=float, default=60)
    ap.add_argument("--modes", default="text-lean,text,json-lean,json,json-bare",
                    help="--once variants (bench/router_guest.py MODES)")
    ap.add_argument("--pyz", default="src,pyc", help="which of src,pyc to run (and base with --base)")
    ap.add_argument("--base", metavar="REF", help="also a sources-only .pyz of this revision")
    ap.add_argument("--base-pyc", action="store_true",
                    help="the --base .pyz with bytecode too (as pyc): a before/after in one boot")
    ap.add_argument("--host", action="store_true", help="run here, in a network namespace")
    ap.add_argument("--tag", default="ftbench-router",
                    help="prefix of the namespace (--host) and temporary directories")
    ap.add_argument("--live-empty", type=float, default=0, metavar="S",
                    help="first the live view of the last .pyz for S s on an empty table "
                         "(VmHWM's floor: bytes per flow = the difference / N)")
    ap.add_argument("--live-all", action="store_true",
                    help="the live view of every .pyz (default: of the last one only)")
    ap.add_argument("--profile", type=int, nargs="?", const=2, default=0, choices=(0, 1, 2, 3),
                    help="the live view under bench/live_profile.py: 1 stage timers and gc "
                         "passes, 2 (the default) and a sampler over every busy thread (~60 ms "
                         "a sample on mipsel), 3 and a cProfile of the stages but the full dump; "
                         "profile-NAME.json beside the result")
    ap.add_argument("--rounds", type=int, default=1,
                    help="--version, --once and the live view of every .pyz this many "
                         "times, in turn (python3 -c pass each round too): take the fastest")
    ap.add_argument("--cprofile", type=int, default=0, metavar="TOP",
                    help="after each --once run, one more under cProfile: its TOP functions "
                         "by own time in the result")
    ap.add_argument("--timeout", type=float, default=4 * 3600)
    ap.add_argument("--json", metavar="FILE", help="also write the raw results here")
    args = ap.parse_args()
    res = on_host(args) if args.host else in_vm(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    print(table(res))


if __name__ == "__main__":
    main()

"""The router bench's guest side: runs inside the VM (bench/router.py boots it).

    python3 router_guest.py OUT.json --flows N [--remotes R] [--live S] [--modes A,B]
                            [--rounds K] [--cprofile TOP] [--pyz NAME=PATH ...]

Fills the VM's own conntrack table with N forwarded-looking TCP flows to R
distinct remote addresses (``conntrack -R``: one process for all of them), then
measures, one after the other in this boot: ``python3 -c pass``, ``conntrack -L``
(plain and ``-o extended``), and for every .pyz: ``--version``, ``--once`` text and
``--json`` with and without ``-n -G``; then the live view (``-n -G``) in tmux for
S seconds: first frame, steady CPU %, VmHWM, key-to-screen.  Wall seconds, CPU
seconds and peak RSS (KiB, wait4) for each; stdlib only (Python 3.9+).
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time

TMUX_SOCK = "/tmp/flowtop-router-tmux-%d" % os.getpid()     # own socket: --host runs here too
# --once variants by name (--modes): -n -G leaves processes and interfaces on; "bare" is
# the leanest output (no lookups at all).
MODES = {"text-lean": ["-n", "-G"], "text": [], "json-lean": ["--json", "-n", "-G"],
         "json": ["--json"], "json-bare": ["--json", "-n", "-G", "--no-iface", "--no-process"],
         # the table's dump recorded once (REPLAY), then decoded from that file: the
         # interpreter's share alone, no kernel (compare with qemu-mipsel-static's run of it)
         "json-replay": ["--json", "-n", "-G", "--replay", "REPLAY"]}
REPLAY = "/tmp/flowtop-router-dump-%d.rec" % os.getpid()      # removed at the end


GNU_TIME = os.environ.get("GNU_TIME", "")


def measure(argv, timeout=3600):
    """wall s, user+sys s, peak RSS KiB, exit status, stdout bytes.  Peak RSS
    through GNU time (its own small process forks the program): a child of this
    Python would carry the Python's high-water mark into its ru_maxrss at exec."""
    report = "/tmp/flowtop-router-time-%d.txt" % os.getpid()
    cmd = ([GNU_TIME, "-f", "%e %U %S %M", "-o", report, "--"] if GNU_TIME else []) + argv
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = 0
    while True:
        chunk = p.stdout.read(65536)
        if not chunk:
            break
        out += len(chunk)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    cpu, rss = ru.ru_utime + ru.ru_stime, ru.ru_maxrss
    if GNU_TIME:
        with open(report) as f:
            last = f.read().split()[-4:]
        cpu, rss = float(last[1]) + float(last[2]), int(last[3])
    return {"wall": round(wall, 3), "cpu": round(cpu, 3), "rss_kib": rss,
            "status": status >> 8, "out_bytes": out}


def fill(flows, remotes):
    lines = []
    for i in range(flows):
        src = "10.%d.%d.%d" % (1 + i // 62500, (i // 250) % 250, 1 + i % 250)
        r = i % remotes
        dst = "198.%d.%d.%d" % (18 + r // 62500, (r // 250) % 250, 1 + r % 250)
        lines.append("-I -p tcp -s %s -d %s --sport %d --dport 443 --state ESTABLISHED "
                     "-t 3600 -u SEEN_REPLY,ASSURED" % (src, dst, 1024 + i % 60000))
    flows_file = "/tmp/flowtop-router-flows-%d.txt" % os.getpid()
    with open(flows_file, "w") as f:
        f.write("\n".join(lines) + "\n")
    t0 = time.monotonic()
    subprocess.run(["conntrack", "-R", flows_file], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    os.unlink(flows_file)
    n = int(subprocess.run(["conntrack", "-C"], stdout=subprocess.PIPE,
                           text=True).stdout.strip() or 0)
    return {"inserted": n, "seconds": round(time.monotonic() - t0, 1)}


def tmux(*args, **kw):
    return subprocess.run(["tmux", "-S", TMUX_SOCK] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, **kw)


class Control:
    """A tmux control-mode client (no pane output sent to it): the screen read and keys
    sent as commands on its stdin, not a tmux process spawned each time - on the mipsel
    VM's one core a capture every 0.05 s while a key was timed took CPU from the view."""

    def __init__(self):
        self.p = subprocess.Popen(["tmux", "-S", TMUX_SOCK, "-C", "attach-session", "-f",
                                   "no-output"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def command(self, line):
        """The command's output: the next %begin ... %end block of this client's (flags 1;
        the attach's own has 0), notifications between blocks skipped."""
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out, begin = [], None
        for raw in self.p.stdout:
            raw = raw.rstrip("\n")
            if begin is None:
                if raw.startswith("%begin "):
                    begin, out = raw.split()[1:4], []
                continue
            if raw.startswith(("%end ", "%error ")) and raw.split()[1:4] == begin:
                if begin[2] == "1":
                    return "\n".join(out)
                begin = None
                continue
            out.append(raw)
        raise RuntimeError("tmux control client ended")

    def screen(self):
        return self.command("capture-pane -p")

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait()


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def live(python, pyz, flows, seconds, profile=None):
    """The live view in tmux for ``seconds`` after its first frame; with ``profile``
    ((path, level)), run under live_profile.py writing to path: 1 stage timers and gc
    passes, 2 and the sampler, 3 and a cProfile of the tick's stages but the full dump."""
    cmd = "exec %s %s -n -G -t 1" % (python, pyz)
    if profile:
        wrapper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "live_profile.py")
        deep = {1: "LIVE_PROFILE_SAMPLER=0 ", 2: "", 3: "LIVE_PROFILE_CPROFILE=1 "}[profile[1]]
        # and the import times (-X importtime) on stderr, into a file beside the profile
        cmd = "PYTHONPROFILEIMPORTTIME=1 %sexec %s %s %s %s -n -G -t 1 2>%s" % (
            deep, python, wrapper, profile[0], pyz, profile[0][:-len(".json")] + "-imports.txt")
    t0 = time.monotonic()
    tmux("new-session", "-d", "-x", "132", "-y", "40", cmd)
    pid = int(tmux("display", "-p", "#{pane_pid}").stdout.strip())
    ctl = Control()
    try:
        return _watch(ctl, pid, t0, flows, seconds)
    except RuntimeError as exc:                 # the view (and its tmux server) ended
        return {"error": str(exc)}
    finally:
        ctl.close()
        tmux("kill-server")


def _watch(ctl, pid, t0, flows, seconds):
    """The live view's first frame, CPU, memory and keys, read through ``ctl``."""
    # the first frame: the header counts >= 95 % of the flows in the table drawn; before
    # 2026-12-06 the dump's progress line ("15200 flows so far") counted too (progress_95);
    # first_rows: the first table drawn at all (the rows of a first dump still being read)
    want = re.compile(r"(\d+) flows(?! in the kernel)( so far)?")
    first = progress = rows = None
    deadline = t0 + 1800
    while time.monotonic() < deadline and first is None:
        now = time.monotonic() - t0
        for m in want.finditer(ctl.screen()):
            n, so_far = int(m.group(1)), bool(m.group(2))
            if n > 0 and not so_far:
                rows = rows or now
            if n >= flows * 0.95:
                progress = progress or now
                if not so_far:
                    first = now
        time.sleep(0.25)
    out = {"first_frame": round(first, 2) if first else None,
           "progress_95": round(progress, 2) if progress else None,
           "first_rows": round(rows, 2) if rows else None}
    if first is None:
        return out
    time.sleep(min(5, seconds / 4))             # settle: the first full pass is behind
    c0, w0 = proc_cpu(pid), time.monotonic()
    keys = []
    end = w0 + seconds
    while time.monotonic() < end - 8 and len(keys) < 3:
        time.sleep(3)
        k0 = time.monotonic()
        ctl.command("send-keys ?")
        while time.monotonic() - k0 < 30 and "Help (any of" not in ctl.screen():
            time.sleep(0.05)
        keys.append(time.monotonic() - k0)
        ctl.command("send-keys Escape")
        while time.monotonic() - k0 < 60 and "Help (any of" in ctl.screen():
            time.sleep(0.05)
    while time.monotonic() < end:
        time.sleep(0.5)
    c1, w1 = proc_cpu(pid), time.monotonic()
    out.update({"cpu_pct": round(100 * (c1 - c0) / (w1 - w0), 1),
                "vmhwm_kib": proc_status(pid, "VmHWM"), "vmrss_kib": proc_status(pid, "VmRSS"),
                "key_to_screen": round(statistics.median(keys), 3) if keys else None,
                "keys": [round(k, 3) for k in keys], "seconds": round(w1 - w0, 1)})
    ctl.command("send-keys q")
    time.sleep(2)
    return out


_CPROFILE = """import cProfile, io, pstats, runpy, sys
pyz, top = sys.argv[1], int(sys.argv[2])
sys.argv = [pyz] + sys.argv[3:]
prof = cProfile.Profile()
prof.enable()
try:
    runpy.run_path(pyz, run_name="__main__")
except SystemExit:
    pass
prof.disable()
out = io.StringIO()
pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
sys.stderr.write(out.getvalue())
"""


_LOOPS = """import time
def timed(f):
    c = time.process_time(); f(); return round(time.process_time() - c, 3)
def ints():
    x = 0
    for i in range(200000):
        x += i * 3
def floats():
    x = 0.0
    for i in range(200000):
        x += i * 0.5
def big(n=200000):
    d = {i * 7919: i for i in range(n)}
    x = 0
    for i in range(n):
        x += d[i * 7919]
def split(f):
    import os
    a = os.times(); f(); b = os.times()
    return round(b.user - a.user, 2), round(b.system - a.system, 2)
sizes = [round(timed(lambda: big(n)) / n * 1e6, 2) for n in (2000, 20000)]
print(timed(ints), timed(floats), timed(lambda: sum(range(10 ** 6))), timed(big), *sizes,
      *split(big))
"""


def empty_zipapp(path="/tmp/flowtop-router-empty.pyz"):
    """A zipapp whose __main__ does nothing: any .pyz's floor, the interpreter's zip
    start (runpy, zipimport) included; here python3 -S ran one in 2.2x the
    instructions of -c pass, and flowtop.pyz --version in 2.1x."""
    import zipfile
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__main__.py", "pass\n")
    return path


def loops(python):
    """CPU s of small Python loops (ints, floats, sum(range(1e6)), a 200k-key dict read
    in order): this machine's speed beside the host's and qemu-user's, and what a big
    working set costs it."""
    argv = [python] if isinstance(python, str) else list(python)    # (or an emulator's argv)
    p = subprocess.run(argv + ["-c", _LOOPS], stdout=subprocess.PIPE, text=True)
    ints, floats, sums, big, us2k, us20k, user, system = (float(v) for v in p.stdout.split())
    # the dict's cost a key at three sizes: a jump past a size is the MMU's reach, not the CPU
    return {"int loop": ints, "float loop": floats, "sum(range(1e6))": sums, "dict 200k": big,
            "dict us/key 2k / 20k / 200k": [us2k, us20k, round(big / 0.2, 2)],
            "dict 200k user / sys s": [user, system]}


def cprofiled(python, pyz, args, top):
    """The ``top`` functions by own time of one run of ``pyz args`` under cProfile
    (its output discarded), as text lines: where a guest's CPU goes per flow."""
    p = subprocess.run([python, "-c", _CPROFILE, pyz, str(top)] + args,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = p.stderr.splitlines()
    at = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return lines[at:at + top + 1]


def main(argv):
    out_path = argv[0]
    opts = {"--flows": "16000", "--remotes": "250", "--live": "60",
            "--modes": "text-lean,text,json-lean,json", "--live-all": "0", "--live-empty": "0",
            "--profile": "0", "--rounds": "1", "--cprofile": "0"}
    pyzs = []
    i = 1
    while i < len(argv):
        if argv[i] == "--pyz":
            pyzs.append(argv[i + 1].split("=", 1))
        else:
            opts[argv[i]] = argv[i + 1]
        i += 2
    flows, remotes, secs = int(opts["--flows"]), int(opts["--remotes"]), float(opts["--live"])
    modes = [m for m in opts["--modes"].split(",") if m]
    py = sys.executable
    res = {"machine": os.uname().machine, "kernel": os.uname().release,
           "python": sys.version.split()[0], "flows": flows, "remotes": remotes}

    def save():
        with open(out_path, "w") as f:
            json.dump(res, f, indent=1)

    def step(name, value):
        res[name] = value
        print("%-34s %s" % (name, json.dumps(value)), flush=True)
        save()

    step("python -c pass", measure([py, "-c", "pass"]))
    step("python -c pass (again)", measure([py, "-c", "pass"]))
    step("python empty.pyz", measure([py, empty_zipapp()]))
    step("python loops", loops(py))
    if float(opts["--live-empty"]) > 0 and pyzs:      # the floor: VmHWM with no flows
        name, pyz = pyzs[-1]
        step("%s live -n -G, no flows" % name, live(py, pyz, 0, float(opts["--live-empty"])))
    step("fill", fill(flows, remotes))
    step("conntrack -L", measure(["conntrack", "-L"]))
    step("conntrack -L -o extended", measure(["conntrack", "-L", "-o", "extended"]))
    rounds = int(opts["--rounds"])
    # the .pyz in turn, the order reversed every other round (A B, B A, ...): the emulated
    # CPU drifts within a boot (mipsel's live views 30 -> 41 s over three rounds)
    turns = [pyzs[::-1] if r % 2 else pyzs for r in range(rounds)]
    for r in range(rounds):
        again = "" if r == 0 else " #%d" % (r + 1)
        if r:
            step("python -c pass" + again, measure([py, "-c", "pass"]))
        for name, pyz in turns[r]:
            step("%s --version%s" % (name, again), measure([py, pyz, "--version"]))
            step("%s --version (again)%s" % (name, again), measure([py, pyz, "--version"]))
            for mode in modes:
                label = ("%s --once %s" % (name, " ".join(MODES[mode]))).rstrip() + again
                if mode == "json-replay" and not os.path.exists(REPLAY):
                    step("record the dump", measure([py, pyz, "--once"] + MODES["json-bare"]
                                                    + ["--record", REPLAY]))
                args = [REPLAY if a == "REPLAY" else a for a in MODES[mode]]
                step(label, measure([py, pyz, "--once"] + args))
                if opts["--cprofile"] != "0":
                    step(label + " cProfile", cprofiled(py, pyz, ["--once"] + args,
                                                        int(opts["--cprofile"])))
    # the live view of the last .pyz, or of each with --live-all 1 (same boot: comparable),
    # --rounds times, in turn
    for r in range(rounds):
        again = "" if r == 0 else " #%d" % (r + 1)
        for name, pyz in (turns[r] if opts["--live-all"] == "1" else pyzs[-1:]) if secs > 0 else ():
            profile = ((os.path.join(os.path.dirname(os.path.abspath(out_path)),
                                     "profile-%s%s.json" % (name, again.replace(" #", "-"))),
                        int(opts["--profile"])) if opts["--profile"] != "0" else None)
            step("%s live -n -G%s" % (name, again), live(py, pyz, flows, secs, profile))
    if os.path.exists(REPLAY):
        os.unlink(REPLAY)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

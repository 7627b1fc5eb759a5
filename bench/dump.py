#!/usr/bin/env python3
"""bench/dump.py N [--keep] [--repeat R] [--json-out FILE]: what one full dump costs.

Run as root.  Builds a throw-away network namespace holding N real flows
(UDP over IPv4 and IPv6, held-open TCP connections, ICMP echo), then times,
in that same namespace and the same run, flowtop's one-shot output against
``conntrack -L`` (C, the yardstick), a bare Python receive loop (the floor:
kernel work plus recv, no decoding) and decoding alone over a recorded dump.
Ratios against conntrack in one run are what compare across machines;
absolute seconds are noisy.  See bench/README.md.
"""

import argparse
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path[:0] = [BENCH, ROOT]

import netns  # noqa: E402

CONNTRACK = "conntrack -L -o extended"
ROWS = ("flowtop --once --json", "  ... with processes, ifaces", "flowtop --once",
        "flowtop --once --json, no flags", "flowtop --once, no flags", CONNTRACK,
        "bare recv loop (floor)", "decode only (feed)")
_BARE, _DECODE = ROWS.index("bare recv loop (floor)"), ROWS.index("decode only (feed)")


def mix(n):
    """How N flows are made: mostly UDP (fastest to create), a few of each other kind."""
    m = {"tcp": min(300, n // 20), "icmp4": min(2000, n // 50), "icmp6": min(500, n // 200),
         "udp6": n // 10}
    m["udp4"] = n - sum(m.values())
    return m


def fill(ns, n, distinct=False):
    """Fill ``ns`` with ~n flows, topping up with IPv4 UDP until ``conntrack -C`` says n;
    ``distinct``: every IPv4 UDP flow to an address of its own."""
    t0 = time.monotonic()
    m = mix(n)
    netns.fill_udp(ns, m["udp4"], distinct=distinct)
    netns.fill_udp(ns, m["udp6"], socket.AF_INET6)
    netns.fill_icmp(ns, m["icmp4"])
    netns.fill_icmp(ns, m["icmp6"], socket.AF_INET6)
    netns.fill_tcp(ns, m["tcp"])            # held open by ns until teardown
    count, start = ns.count(), m["udp4"]
    for _ in range(2):
        if count >= n:
            break
        netns.fill_udp(ns, n - count, start=start, distinct=distinct)
        start += n - count
        count = ns.count()
    return m, count, time.monotonic() - t0


# --- measuring: runs inside the namespace (python3 dump.py --inside) ----------

def _cpu_self():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_child(argv, cwd=ROOT):
    """(wall, cpu, rc, stderr tail, peak RSS KiB) of one command; CPU is the child's
    user+sys from wait4.  RSS is the last VmHWM read from /proc while it ran (every
    10 ms): wait4's ru_maxrss would carry this Python's own high-water mark into the
    child (exec keeps the larger one), ~20 MiB for conntrack's ~2."""
    import threading
    last = [None]
    done = threading.Event()

    def sample(pid):
        while not done.is_set():
            try:
                with open("/proc/%d/status" % pid) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            last[0] = int(line.split()[1])
            except (OSError, ValueError):
                pass
            done.wait(0.01)

    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        sampler = threading.Thread(target=sample, args=(p.pid,), daemon=True)
        sampler.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = (err.read().decode(errors="replace").strip().splitlines() or [""])[-1]
    return wall, ru.ru_utime + ru.ru_stime, p.returncode, tail, last[0]


def bare_dump(sock, seq):
    """Request a dump and recv until NLMSG_DONE, decoding nothing: returns bytes received.

    NLMSG_DONE is always the last message of the last datagram, so only the
    final 20 bytes of each datagram are looked at.
    """
    from flowtop.netlink import ctnetlink, nlmsg
    from flowtop.netlink.uapi import NLMSG_DONE, NLMSG_ERROR
    hdr = nlmsg.NLMSGHDR.unpack_from
    sock.send(ctnetlink.dump_request(seq))
    total = 0
    while True:
        chunk = sock.recv()
        total += len(chunk)
        if len(chunk) >= 20:
            length, mtype, _, mseq, _ = hdr(chunk, len(chunk) - 20)
            if length == 20 and mtype == NLMSG_DONE and mseq == seq:
                return total
        if hdr(chunk, 0)[1] == NLMSG_ERROR:
            raise OSError("netlink error %d" % -nlmsg.error_code(chunk, 16, len(chunk)))


class Recorder:
    """Keeps the datagrams of the last dump attempt (conntrack.dump's recorder protocol)."""

    def begin(self):
        self.chunks = []

    def chunk(self, data):
        self.chunks.append(data)


def measure_inside(repeat, baseline=None):
    """Time every row ``repeat`` times, round-robin so drift hits all rows alike;
    ``baseline``: another flowtop tree whose rows run beside these (before/after)."""
    from flowtop.netlink import conntrack
    from flowtop.netlink.socket import NetlinkSocket
    from flowtop.model import Flow
    from flowtop.netlink.ctdecoder import Decoder

    rows = list(ROWS)
    if baseline:
        rows[5:5] = ["base: " + name.strip() for name in ROWS[:5]]
    res = {name: {"walls": [], "cpus": [], "rss": [], "na": None} for name in rows}
    # What conntrack -L does: the table, no names.  -n -G --no-iface
    # --no-process leave out reverse DNS, GeoIP, route lookups and process
    # names (network, database, routing and /proc costs conntrack does not
    # pay); the row after it puts processes and interfaces back.
    bare = ["-n", "-G", "--no-iface", "--no-process"]
    commands = {"flowtop --once --json": [sys.executable, "-m", "flowtop", "--once", "--json"]
                + bare,
                "  ... with processes, ifaces": [sys.executable, "-m", "flowtop", "--once",
                                                 "--json", "-n", "-G"],
                "flowtop --once": [sys.executable, "-m", "flowtop", "--once"] + bare,
                # what a user gets without flags: reverse DNS, processes, interfaces
                "flowtop --once --json, no flags": [sys.executable, "-m", "flowtop", "--once",
                                                    "--json"],
                "flowtop --once, no flags": [sys.executable, "-m", "flowtop", "--once"],
                CONNTRACK: ["conntrack", "-L", "-o", "extended"]}
    cwds = {}
    if baseline:
        for name in ROWS[:5]:
            commands["base: " + name.strip()] = commands[name]
            cwds["base: " + name.strip()] = baseline
        commands = {name: commands[name] for name in rows if name in commands}
    if not os.path.exists(os.path.join(ROOT, "flowtop", "__main__.py")):
        for name in ROWS[:5]:
            res[name]["na"] = "flowtop/__main__.py does not exist yet"
    for name, argv in commands.items():       # warm-up (.pyc, page cache), and is it there?
        if res[name]["na"]:
            continue
        try:
            _, _, rc, tail, _ = run_child(argv, cwds.get(name, ROOT))
        except OSError as e:
            rc, tail = None, str(e)
        if rc != 0:
            res[name]["na"] = "exit %s: %s" % (rc, tail)

    sock = NetlinkSocket()
    rec = Recorder()
    entries = conntrack.dump(sock, recorder=rec)
    if isinstance(entries, tuple):              # older dump() returned (entries, state)
        entries = entries[0]
    flows, chunks = len(entries), rec.chunks
    del entries
    seq = 1
    for _ in range(repeat):
        for name, argv in commands.items():
            if not res[name]["na"]:
                wall, cpu, rc, tail, rss = run_child(argv, cwds.get(name, ROOT))
                res[name]["walls"].append(wall)
                res[name]["cpus"].append(cpu)
                res[name]["rss"].append(rss)
        seq += 1
        c0, t0 = _cpu_self(), time.perf_counter()
        nbytes = bare_dump(sock, seq)
        res[ROWS[_BARE]]["walls"].append(time.perf_counter() - t0)
        res[ROWS[_BARE]]["cpus"].append(_cpu_self() - c0)
        out, state = [], conntrack.DumpState()
        c0, t0 = _cpu_self(), time.perf_counter()
        decoder = Decoder(Flow)          # what flowtop uses: learns layouts as it goes
        for chunk in chunks:
            conntrack.feed(chunk, out, state, decode=decoder)
        res[ROWS[_DECODE]]["walls"].append(time.perf_counter() - t0)
        res[ROWS[_DECODE]]["cpus"].append(_cpu_self() - c0)
        if len(out) != flows or state.dropped:
            res[ROWS[_DECODE]]["na"] = "decoded %d of %d (%d dropped)" % (len(out), flows, state.dropped)
    sock.close()
    out = []
    for name in rows:
        r = res[name]
        out.append({"name": name, "na": r["na"], "walls": r["walls"], "cpus": r["cpus"],
                     "rss_kib": max(r["rss"]) if r["rss"] else None,
                     "wall": None if r["na"] else statistics.median(r["walls"]),
                     "cpu": None if r["na"] else statistics.median(r["cpus"])})
    return {"dumped_flows": flows, "dump_bytes": nbytes, "dump_datagrams": len(chunks), "rows": out}


# --- reporting ----------------------------------------------------------------

def table(result):
    """The printed table: medians, wall relative to conntrack, flows dumped per wall second."""
    flows = result["dumped_flows"]
    ct = next(r for r in result["rows"] if r["name"] == CONNTRACK)
    lines = ["%-32s %8s %8s %8s %11s %9s" % ("", "wall s", "CPU s", "wall/ct", "flows/s",
                                              "RSS MiB")]
    for r in result["rows"]:
        if r["na"]:
            lines.append("%-32s %8s   (%s)" % (r["name"], "n/a", r["na"]))
            continue
        ratio = "%8.2f" % (r["wall"] / ct["wall"]) if ct["wall"] else "%8s" % "n/a"
        rss = "%9.1f" % (r["rss_kib"] / 1024) if r.get("rss_kib") else "%9s" % ""
        lines.append("%-32s %8.3f %8.3f %s %11s %s" % (r["name"], r["wall"], r["cpu"], ratio,
                                                        "{:,.0f}".format(flows / r["wall"]), rss))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, nargs="?", help="number of flows to create")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown")
    ap.add_argument("--keep", action="store_true", help="leave the namespace in place")
    ap.add_argument("--json-out", metavar="FILE", help="also write the numbers as JSON")
    ap.add_argument("--distinct", action="store_true",
                    help="every IPv4 UDP flow to an address of its own (many remote hosts)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="another flowtop tree (e.g. a 'git worktree' of main): its rows run "
                         "beside this tree's, in the same namespace and rounds")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        print(json.dumps(measure_inside(args.repeat, args.baseline)))
        return 0
    if args.n is None or args.n < 1 or args.repeat < 1:
        ap.error("N and --repeat must be positive")
    if os.geteuid() != 0:
        sys.exit("bench/dump.py needs root (network namespaces, nftables)")

    netns.exit_on_signals()
    netns.compile_package(ROOT)       # .pyc as an install has them
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
        netns.compile_package(args.baseline)
    name = "ftbench-dump-%d" % os.getpid()
    with netns.Namespace(name, keep=args.keep) as ns:
        want_max = ns.sysctl({"nf_conntrack_max": args.n + args.n // 10 + 1000})["nf_conntrack_max"]
        m, count, fill_s = fill(ns, args.n, args.distinct)
        print("namespace %s: %d flows (conntrack -C) of N=%d in %.1f s  [%s]"
              % (name, count, args.n, fill_s, ", ".join("%s %d" % kv for kv in m.items())), flush=True)
        if count < 0.95 * args.n:
            print("error: only %d flows, under 95%% of N; nf_conntrack_max %s%s"
                  % (count, want_max["after"], " (%s)" % want_max["error"] if want_max["error"] else ""),
                  file=sys.stderr)
            return 1
        inner = ns.run(sys.executable, os.path.abspath(__file__), "--inside", "--repeat", args.repeat,
                       *(("--baseline", args.baseline) if args.baseline else ()))
        result = json.loads(inner.stdout)
        if args.keep:
            print("kept namespace %s: inspect with 'ip netns exec %s conntrack -L', remove with "
                  "'ip netns del %s' (the TCP connections are closed)" % (name, name, name))

    result.update(kernel=platform.release(), python=platform.python_version(), n=args.n,
                  count=count, fill_s=fill_s, mix=m, repeat=args.repeat, distinct=args.distinct,
                  sysctl=dict(ns.sysctl_report, nf_conntrack_max=want_max))
    mx = want_max
    print("kernel %s, Python %s, N=%d, conntrack -C %d, dumped %d flows in %d datagrams (%.1f MB), "
          "median of %d" % (result["kernel"], result["python"], args.n, count, result["dumped_flows"],
                            result["dump_datagrams"], result["dump_bytes"] / 1e6, args.repeat))
    print("nf_conntrack_max %s%s" % (mx["after"], " (could not raise: %s)" % mx["error"] if mx["error"] else ""))
    print(table(result))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:       # the namespace is gone by now (with-block)
        sys.exit(130)

#!/usr/bin/env python3
"""What the process enricher costs per tick (run as root).

    sudo python3 bench/process.py [--procs 1000] [--per 10] [--ticks 5] [--repeat 7]

In a throw-away namespace ``ftbench-proc-<pid>``, a holder forks PROCS
sleeping children that open PER sockets each (a TCP listener, three TCP
connections to it - both ends -, two UDP sockets bound to a wildcard, one
connected UDP socket that sent a datagram; IPv4 and IPv6 alternate), so the
namespace has PROCS x PER sockets and ~4 conntrack flows per child.  Then,
inside the namespace:

1. socket table: one sock_diag pass (TCP, UDP, UDP-lite x IPv4, IPv6) and
   one pass over the same six /proc/net files, each split into kernel
   (receive/read) and Python (decode/parse) time - medians of REPEAT;
2. ProcessMap ticks (refresh + lookup of every flow + retain): the first
   tick (every PID is new: all descriptors are read), steady ticks (nothing
   new), and a churn tick (10 new processes with 5 sockets each), with the
   /proc work each did: PIDs stat()ed, PIDs listed, descriptor links read.
   The same ticks with ``sockets="proc"`` for comparison.

Every process and the namespace are removed on exit (SIGTERM/SIGHUP too).
Stdlib only, Python 3.9+.
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)

import netns  # noqa: E402


# --- the holder: PROCS children with PER sockets each, inside the namespace ----------

def _child_sockets(i, per):
    """Open ``per`` sockets (>= 5) as the module doc says; return them to keep."""
    family, host = (socket.AF_INET, "127.0.0.1") if i % 2 == 0 else (socket.AF_INET6, "::1")
    keep = []
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.bind((host, 0))
    ls.listen(8)
    keep.append(ls)
    ntcp = max(0, (per - 4) // 2)
    for _ in range(ntcp):
        c = socket.create_connection(ls.getsockname()[:2])
        keep.extend([c, ls.accept()[0]])
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("0.0.0.0", 0))
    other = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    other.bind(("::", 0))
    cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cli.connect(("127.0.0.1", srv.getsockname()[1]))
    cli.send(b"x")
    keep.extend([srv, other, cli])
    while len(keep) < per:
        extra = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        extra.bind(("127.0.0.1", 0))
        keep.append(extra)
    return keep


def _spawn(n, per):
    """Fork ``n`` children holding sockets until ``release`` closes the pipe.
    Returns (pids, release fd)."""
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(hold_w)
                os.close(ready_r)
                keep = _child_sockets(i, per)
                os.write(ready_w, b"r")
                os.read(hold_r, 1)              # EOF when the parent lets go
                del keep
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(ready_w)
    os.close(hold_r)
    got = 0
    while got < n:
        b = os.read(ready_r, n - got)
        if not b:
            break
        got += len(b)
    os.close(ready_r)
    if got < n:
        raise RuntimeError("only %d of %d children came up" % (got, n))
    return pids, hold_w


def _release(pids, hold_w):
    os.close(hold_w)
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def hold(procs, per):
    """Worker: fork the children, say ready, hold until stdin closes."""
    pids, hold_w = _spawn(procs, per)
    print(json.dumps({"pids": len(pids)}), flush=True)
    sys.stdin.read()
    _release(pids, hold_w)


class Holder:
    """The ``hold`` worker as a child: ready once it printed; ``close()``
    closes its stdin (its cue to release the children) and waits."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.ready = bool(self.proc.stdout.readline())

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


# --- measurements, inside the namespace ------------------------------------------------

def _median_ms(xs):
    return round(1000 * statistics.median(xs), 2)


def compare_sources(repeat):
    from flowtop.enrich.procfs import PROC_NET, hex_text, parse_proc_net, read_file
    from flowtop.netlink import sockdiag
    from flowtop.netlink.uapi import IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE
    pairs = [(p, f) for f in sockdiag.FAMILIES
             for p in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE)]
    files = [(name, p) for name, p, f in PROC_NET if (p, f) in pairs]
    sock = sockdiag.open_socket()
    res = {"diag_kernel": [], "diag_python": [], "diag_total": [],
           "proc_kernel": [], "proc_python": [], "proc_total": []}
    counts = {}
    for _ in range(repeat):
        # sock_diag: the full pass as ProcessMap does it, then its decode alone
        chunks = {}
        t0 = time.perf_counter()
        n = 0
        for p, f in pairs:
            rec = chunks.setdefault((p, f), [])
            n += len(sockdiag.dump(sock, f, p, recorder=rec.append))
        total = time.perf_counter() - t0
        t0 = time.perf_counter()
        for (p, _f), rec in chunks.items():
            sockdiag.decode_dump(b"".join(rec), p)
        python = time.perf_counter() - t0
        res["diag_total"].append(total)
        res["diag_python"].append(python)
        res["diag_kernel"].append(max(0.0, total - python))
        counts["sock_diag"] = n
        # /proc/net: read, then parse
        t0 = time.perf_counter()
        texts = [(p, read_file("/proc/net/" + name, 64 << 20)) for name, p in files]
        kernel = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = []
        cache = hex_text()
        for p, data in texts:
            parse_proc_net(data, p, out, cache)
        python = time.perf_counter() - t0
        res["proc_kernel"].append(kernel)
        res["proc_python"].append(python)
        res["proc_total"].append(kernel + python)
        counts["proc"] = len(out)
    sock.close()
    return dict({k: _median_ms(v) for k, v in res.items()}, sockets=counts)


def run_ticks(sockets, ticks):
    from flowtop import api as conntrack
    from flowtop.enrich.process import ProcessMap
    flows = conntrack.dump()
    keys = {f.key for f in flows}
    m = ProcessMap(sockets=sockets)

    def tick():
        c0, t0 = time.process_time(), time.perf_counter()
        m.refresh()
        t1 = time.perf_counter()
        found = sum(1 for f in flows if m.lookup(f) is not None)
        m.retain(keys)
        t2 = time.perf_counter()
        st = m.stats
        return {"ms": round(1000 * (t2 - t0), 2),
                "cpu_ms": round(1000 * (time.process_time() - c0), 2),
                "refresh_ms": round(1000 * (t1 - t0), 2), "lookup_ms": round(1000 * (t2 - t1), 2),
                "socket_ms": round(1000 * st.socket_seconds, 2), "sockets": st.sockets,
                "unknown": st.unknown, "unresolved": st.unresolved, "pids_stat": st.pids_stat,
                "pids_scanned": st.pids_scanned, "fds": st.fds, "full_scan": st.full_scan,
                "info_reads": st.info_reads, "flows": len(flows), "found": found,
                "source": st.source}

    first = tick()
    steady = [tick() for _ in range(ticks)]
    # 10 new processes with 5 sockets each, forked by another process (a fork
    # of this one would make its next ticks pay for copy-on-write faults)
    churner = Holder([sys.executable, os.path.abspath(__file__), "hold", "--procs", "10",
                      "--per", "5"])
    try:
        if not churner.ready:
            raise RuntimeError("the churn holder died")
        churn = tick()
        after = tick()
    finally:
        churner.close()
    m.close()
    mid = sorted(steady, key=lambda r: r["ms"])[len(steady) // 2]
    return {"first": first, "steady": mid, "churn": churn, "after_churn": after}


def inside(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nprocs = sum(1 for n in os.listdir("/proc") if n.isdigit())
    out = {"processes_visible": nprocs, "sources": compare_sources(args.repeat),
           "auto": run_ticks("auto", args.ticks),
           "proc": run_ticks("proc", args.ticks)}
    print(json.dumps(out))


# --- the driver ---------------------------------------------------------------------

def report(r, args):
    s = r["sources"]
    print("%d holder processes x %d sockets; %d processes visible; kernel %s, Python %s"
          % (args.procs, args.per, r["processes_visible"], os.uname().release,
             sys.version.split()[0]))
    print("\nsocket table, TCP+UDP+UDP-lite x v4+v6, median of %d (ms):" % args.repeat)
    print("  %-10s %8s %8s %8s %9s" % ("", "kernel", "python", "total", "sockets"))
    print("  %-10s %8.2f %8.2f %8.2f %9d" % ("sock_diag", s["diag_kernel"], s["diag_python"],
                                            s["diag_total"], s["sockets"]["sock_diag"]))
    print("  %-10s %8.2f %8.2f %8.2f %9d" % ("/proc/net", s["proc_kernel"], s["proc_python"],
                                            s["proc_total"], s["sockets"]["proc"]))
    for mode in ("auto", "proc"):
        t = r[mode]
        print("\nProcessMap(sockets=%r), %d flows looked up per tick (source %s):"
              % (mode, t["first"]["flows"], t["steady"]["source"]))
        print("  %-12s %8s %8s %8s %8s %8s %7s %7s %7s %6s %5s" % (
            "tick", "wall ms", "cpu ms", "refresh", "sockets", "lookups", "stat", "listed",
            "fds", "unres", "found"))
        for name in ("first", "steady", "churn", "after_churn"):
            x = t[name]
            print("  %-12s %8.2f %8.2f %8.2f %8.2f %8.2f %7d %7d %7d %6d %5d" % (
                name, x["ms"], x["cpu_ms"], x["refresh_ms"], x["socket_ms"], x["lookup_ms"],
                x["pids_stat"], x["pids_scanned"], x["fds"], x["unresolved"], x["found"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=1000)
    ap.add_argument("--per", type=int, default=10, help="sockets per process (>= 5)")
    ap.add_argument("--ticks", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json-out")
    ap.add_argument("mode", nargs="?", default="run", choices=("run", "hold", "inside"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode == "hold":
        return hold(args.procs, args.per)
    if args.mode == "inside":
        return inside(args)
    if os.geteuid() != 0:
        sys.exit("bench/process.py needs root (network namespaces, nftables)")
    netns.exit_on_signals()
    netns.compile_package(REPO)       # .pyc as an install has them
    with netns.Namespace("ftbench-proc-%d" % os.getpid()) as ns:
        t0 = time.monotonic()
        holder = ns.own(Holder(ns.argv(sys.executable, os.path.abspath(__file__), "hold",
                                       "--procs", args.procs, "--per", args.per)))
        if not holder.ready:
            sys.exit("the holder died before it was ready")
        print("namespace %s: %d processes with %d sockets each in %.1f s, %d flows"
              % (ns.name, args.procs, args.per, time.monotonic() - t0, ns.count()))
        out = ns.run(sys.executable, os.path.abspath(__file__), "inside", "--ticks", args.ticks,
                     "--repeat", args.repeat, "--per", args.per, cwd=REPO).stdout
    r = json.loads(out)
    report(r, args)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(r, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

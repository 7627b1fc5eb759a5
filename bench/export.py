#!/usr/bin/env python3
"""bench/export.py [--flows 100000] [--rate 2000] [--seconds 60]: IPFIX export under churn.

Run as root.  In a throw-away namespace, soak.py's sender keeps ~FLOWS UDP
flows with RATE new ones a second (as many expire).  Then, in turn, for
SECONDS each:

  live     the live view's collector and its per-second view-model work
           (live.py's in-namespace collector, no curses): "the live table alone"
  ipfix    ``flowtop --ipfix 127.0.0.1:PORT -n -G --no-sysctl`` (headless,
           active timeout 60 s) with a collector socket in the namespace
           that parses every message (ipfix.parse_message) and counts records

CPU is each child's user+sys (wait4), start-up dump included, as % of one
core over its run.  The collector's report: messages, data records, final
records (flowEndReason 1/3, from DESTROY events) and sequence gaps.
See bench/README.md.
"""

import argparse
import json
import os
import subprocess
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path[:0] = [BENCH, ROOT]

import netns  # noqa: E402
from dump import run_child  # noqa: E402
from soak import SenderProc  # noqa: E402

PORT = 19990

COLLECTOR = r"""
import json, socket, sys
sys.path.insert(0, sys.argv[2])
from flowtop.export import ipfix
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
print("ready", flush=True)
templates, stats, expect = {}, {"messages": 0, "records": 0, "final": 0, "forced": 0,
                                "seq_gaps": 0, "bytes": 0}, None
try:
    while True:
        d = s.recv(65535)
        h, recs = ipfix.parse_message(d, templates)
        if expect is not None and h["sequence"] != expect:
            stats["seq_gaps"] += 1
        stats["messages"] += 1
        stats["records"] += len(recs)
        expect = (h["sequence"] + sum(1 for _ in recs)) & 0xFFFFFFFF
        for _, r in recs:
            reason = r.get("flowEndReason")
            stats["final"] += reason in (1, 3)
            stats["forced"] += reason == 4
            stats["bytes"] += r.get("octetDeltaCount", 0)
except socket.timeout:
    pass
print(json.dumps(stats), flush=True)
"""

LIVE = ("import sys; sys.path[:0] = [%r, %r]; import live; live._run_collector(%s)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flows", type=int, default=100000)
    p.add_argument("--rate", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--timeout", type=int, default=0, help="UDP timeout (default flows/rate)")
    args = p.parse_args()
    timeout = args.timeout or max(1, round(args.flows / args.rate))
    res = {"flows": args.flows, "rate": args.rate, "seconds": args.seconds}
    with netns.Namespace("ftbench-i14x%d" % os.getpid()) as ns:
        ns.sysctl({"nf_conntrack_max": 2 * args.flows + 10000})
        ns.run("sh", "-c", "echo 1 > /proc/sys/net/netfilter/nf_conntrack_acct; "
               "echo 1 > /proc/sys/net/netfilter/nf_conntrack_timestamp; "
               "echo 1 > /proc/sys/net/netfilter/nf_conntrack_events")
        sender = ns.own(SenderProc(ns, args.flows, args.rate, timeout))
        res["prefill"] = sender.prefill
        res["count_start"] = ns.count()
        print("prefilled: %s, conntrack -C %d" % (sender.prefill, res["count_start"]), flush=True)
        wall, cpu, rc, tail, _rss = run_child(ns.argv(sys.executable, "-c",
                                                LIVE % (BENCH, ROOT, args.seconds)))
        res["live"] = {"wall": wall, "cpu": cpu, "cpu_pct": 100 * cpu / wall, "rc": rc,
                       "tail": tail}
        print("live table alone: %.1f s CPU in %.1f s = %.1f %% of a core"
              % (cpu, wall, 100 * cpu / wall), flush=True)
        col = subprocess.Popen(ns.argv(sys.executable, "-c", COLLECTOR, PORT, ROOT),
                               stdout=subprocess.PIPE, text=True)
        assert col.stdout.readline().strip() == "ready"
        wall, cpu, rc, tail, _rss = run_child(ns.argv(
            "timeout", "-s", "TERM", str(args.seconds), sys.executable, "-m", "flowtop",
            "--ipfix", "127.0.0.1:%d" % PORT, "-n", "-G", "--no-sysctl"))
        stats = json.loads(col.stdout.readline())
        col.wait(10)
        res["ipfix"] = {"wall": wall, "cpu": cpu, "cpu_pct": 100 * cpu / wall, "rc": rc,
                        "tail": tail, "collector": stats}
        res["count_end"] = ns.count()
        print("ipfix export: %.1f s CPU in %.1f s = %.1f %% of a core; collector %s"
              % (cpu, wall, 100 * cpu / wall, stats), flush=True)
        sender.close()
        res["sender"] = sender.final
    print(json.dumps(res))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""bench/eventlog.py [--flows 100000] [--rate 2000] [--seconds 30]: ``--events`` under churn.

Run as root.  In a throw-away namespace, soak.py's sender keeps ~FLOWS UDP
flows with RATE new ones a second (as many expire); then
``flowtop --events --json -n -G --no-sysctl`` runs for SECONDS (SIGINT at
the end) writing to a file.  CPU is the child's user+sys (wait4), start-up
dump included; the log's start, end and lost records are counted.
See bench/README.md.
"""

import argparse
import collections
import json
import os
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path[:0] = [BENCH, ROOT]

import netns  # noqa: E402
from soak import SenderProc  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flows", type=int, default=100000)
    p.add_argument("--rate", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()
    timeout = max(1, round(args.flows / args.rate))
    with netns.Namespace("ftbench-i15a%d" % os.getpid()) as ns, \
            tempfile.NamedTemporaryFile("w+") as log:
        ns.sysctl({"nf_conntrack_max": 2 * args.flows + 10000})
        ns.run("sh", "-c", "echo 1 > /proc/sys/net/netfilter/nf_conntrack_acct; "
               "echo 1 > /proc/sys/net/netfilter/nf_conntrack_timestamp; "
               "echo 1 > /proc/sys/net/netfilter/nf_conntrack_events")
        sender = ns.own(SenderProc(ns, args.flows, args.rate, timeout))
        print("prefilled: %s, conntrack -C %d" % (sender.prefill, ns.count()), flush=True)
        t0 = time.perf_counter()
        pid = os.spawnvp(os.P_NOWAIT, "sh", ["sh", "-c", 'exec "$@" > %s' % log.name, "sh"]
                         + ns.argv("timeout", "-s", "INT", str(args.seconds), sys.executable,
                                   "-m", "flowtop", "--events", "--json", "-n", "-G",
                                   "--no-sysctl"))
        _, status, ru = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
        cpu = ru.ru_utime + ru.ru_stime
        kinds = collections.Counter(json.loads(line)["event"] for line in open(log.name))
        sender.close()
    res = {"flows": args.flows, "rate": args.rate, "wall": round(wall, 1),
           "cpu": round(cpu, 1), "cpu_pct": round(100 * cpu / wall, 1),
           "status": os.waitstatus_to_exitcode(status), "records": dict(kinds)}
    print("--events --json: %.1f s CPU in %.1f s = %.1f %% of a core; %s"
          % (cpu, wall, 100 * cpu / wall, dict(kinds)))
    print(json.dumps(res))


if __name__ == "__main__":
    main()

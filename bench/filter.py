#!/usr/bin/env python3
"""bench/filter.py N [--repeat R]: what pushing a --filter down to the kernel saves.

Run as root.  Fills a throw-away namespace with N flows as bench/dump.py
does, then times, inside it, one dump + the compiled filter over every flow
(what ``--once --filter EXPR`` does per snapshot) with the kernel's dump
filter (ctnetlink CTA_MARK/CTA_STATUS/CTA_FILTER) and without it.  Both
must keep the same flows.  See bench/README.md.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path[:0] = [BENCH, ROOT]

import netns  # noqa: E402

EXPRS = ("mark=1", "proto=tcp", "proto=icmp and status=seen_reply",
         "dst=127.1.0.1", "proto=udp and dport=20000")


def measure_inside(repeat):
    from flowtop import conntrack
    from flowtop.netlink import conntrack as ct
    from flowtop.table import TableFlow
    from flowtop.views.filterexpr import compile
    from flowtop.views.filterfields import RowFields
    from flowtop.views.filterpush import pushdown

    sock = conntrack.open_socket(TableFlow)
    total = len(ct.dump(sock, 0, None, sock.decoder))
    out = {"flows": total, "rows": []}
    for text in EXPRS:
        flt = compile(text)
        fields = RowFields(None)
        pushed = pushdown(flt)
        times = {"python": [], "kernel": []}
        kept = {}
        for _ in range(repeat):
            for how in ("python", "kernel"):
                sock.dump_filter = pushed if how == "kernel" else None
                t0 = time.perf_counter()
                flows = ct.dump(sock, 0, None, sock.decoder)
                keep = [f for f in flows if flt(fields.of(f))]
                times[how].append(time.perf_counter() - t0)
                kept[how] = (len(flows), len(keep))
        assert kept["python"][1] == kept["kernel"][1], (text, kept)
        out["rows"].append({"expr": text, "pushed": pushed is not None,
                            "sent_python": kept["python"][0], "sent_kernel": kept["kernel"][0],
                            "kept": kept["kernel"][1],
                            "python_s": statistics.median(times["python"]),
                            "kernel_s": statistics.median(times["kernel"])})
    out["devices"] = devices_cost(sock, repeat)
    return out


def devices_cost(sock, repeat):
    """Per-tick cost of the device totals (enrich/devices.py) over the whole
    table, as on a router where every flow is a LAN device's: the first
    tick (every flow new), then a tick of idle flows, then one where
    every flow changed (each row counted)."""
    from flowtop.enrich.devices import Devices
    from flowtop.netlink import conntrack as ct
    from flowtop.table import FlowTable, TableFlow
    table = FlowTable()
    sock.dump_filter = None
    flows = ct.dump(sock, 0, None, sock.decoder)
    table.apply(flows, time.monotonic(), time.time())
    del flows
    flows = ct.dump(sock, 0, None, sock.decoder)      # the second sight: idle rows go bare
    table.apply(flows, time.monotonic() + 1, time.time() + 1)
    addrs = {f.src: "02:00:00:00:00:01" for f in flows}
    res = {"first": [], "idle": [], "changed": []}
    for _ in range(repeat):
        d = Devices(lambda: addrs, None, None, dnsmasq=(), odhcpd=(), ethers=())
        d.refresh()
        t0 = time.perf_counter()
        d.account(table, TableFlow)
        res["first"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        d.account(table, TableFlow)
        res["idle"].append(time.perf_counter() - t0)
        d._flows = {k: v and v[:2] + (0, 0, 0, 0) for k, v in d._flows.items()}
        t0 = time.perf_counter()
        d.account(table, None)          # no row skipped as idle
        res["changed"].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in res.items()}


EVAL_EXPRS = ("dport=443", "dport=443 and dst=10.0.0.0/8", "proto=tcp and not status=offload",
              "bytes>1M or age>1h", "host~10.1*")


def eval_cost(n):
    """Seconds to run each of EVAL_EXPRS over ``n`` synthetic table rows
    (no kernel): what '/' costs the live view per snapshot."""
    from flowtop.table import TableFlow
    from flowtop.views.filterexpr import compile
    from flowtop.views.filterfields import RowFields
    rows = [TableFlow(family=2, l4proto=6 if i % 3 else 17,
                      src="192.168.%d.%d" % (i // 250 % 250, i % 250),
                      dst="10.%d.%d.%d" % (i % 200, i // 200 % 250, i % 7),
                      sport=1024 + i % 60000, dport=443 if i % 5 == 0 else 80, state=3,
                      status=14, mark=0, zone=0, bytes_orig=i, bytes_reply=2 * i,
                      packets_orig=1, packets_reply=1, start=int(1.7e18), key=b"%d" % i)
            for i in range(n)]
    acc = RowFields(None, 1.8e9)
    for text in EVAL_EXPRS:
        f = compile(text)
        t0 = time.perf_counter()
        kept = sum(1 for r in rows if f(acc.of(r)))
        print("%-40s %7d kept  %.3f s" % (text, kept, time.perf_counter() - t0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, nargs="?", default=100000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--eval", action="store_true",
                    help="only time the filter over N synthetic rows (no root, no kernel)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.eval:
        eval_cost(args.n)
        return 0
    if args.inside:
        print(json.dumps(measure_inside(args.repeat)))
        return 0
    if os.geteuid() != 0:
        sys.exit("bench/filter.py needs root (network namespaces)")
    import dump
    netns.exit_on_signals()
    netns.compile_package(ROOT)
    name = "ftbench-filter-%d" % os.getpid()
    with netns.Namespace(name) as ns:
        ns.sysctl({"nf_conntrack_max": args.n + args.n // 10 + 1000})
        _m, count, _s = dump.fill(ns, args.n)
        res = json.loads(ns.run(sys.executable, os.path.abspath(__file__), "--inside",
                                "--repeat", args.repeat).stdout)
    print("kernel %s, Python %s, N=%d, conntrack -C %d, median of %d"
          % (platform.release(), platform.python_version(), args.n, count, args.repeat))
    print("%-34s %9s %9s %7s %9s %9s %6s" % ("--filter", "sent all", "sent kern", "kept",
                                             "python s", "kernel s", "saves"))
    for r in res["rows"]:
        print("%-34s %9d %9d %7d %9.3f %9.3f %5.0f%%" % (
            r["expr"], r["sent_python"], r["sent_kernel"], r["kept"], r["python_s"],
            r["kernel_s"], 100 * (1 - r["kernel_s"] / r["python_s"])))
    print("device totals per tick over %d flows: first %.3f s, idle %.3f s, all changed %.3f s"
          % (res["flows"], res["devices"]["first"], res["devices"]["idle"],
             res["devices"]["changed"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

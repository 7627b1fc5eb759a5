#!/usr/bin/env python3
"""bench/soak.py [--minutes 10] [--flows 100000] [--rate 2000]: flowtop under churn.

Run as root.  In a throw-away namespace, keeps ~FLOWS UDP flows live while a
paced sender inside the namespace creates RATE new ones a second (datagrams
to new addresses and ports on loopback) and the old ones expire
(nf_conntrack_udp_timeout = FLOWS / RATE in the namespace).  flowtop's live
view (``-n -G --loopback -t 1``) runs in a tmux pane the whole time, with
nf_conntrack_acct and nf_conntrack_timestamp at 0 beforehand, so its sysctl
guard has work to do.  Every --sample seconds: flowtop's RSS and CPU, the
count on its screen against ``conntrack -C``, and whether its header says
it resynced.  At the end: ``q``, the exit status, no traceback, and the
sysctls back at 0.  See bench/README.md.
"""

import argparse
import json
import os
import platform
import re
import select
import shutil
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
from live import (CLK_TCK, FLOWTOP_COUNT, TERM, Tmux, code_state, cpu_seconds,  # noqa: E402
                  find_process, first_match, is_python_flowtop, pane_line, quit_pane,
                  status_kib, system_busy, tail)

GUARDED = ("nf_conntrack_acct", "nf_conntrack_timestamp")
RESYNC = re.compile(r"\bresynced (\d+)")
HEADER_ERROR = re.compile(r"\berror: (.*)")
V6_EVERY = 10             # one new flow in 10 is IPv6 (to ::1), the rest IPv4 (127.1.x.y and up)


# --- inside the namespace --------------------------------------------------------

def _w_set(values):
    """Set netfilter sysctls to exactly ``values`` (inside the namespace only)."""
    netns._refuse_host_namespace()
    out = {}
    for key, want in values.items():
        with open(netns.NF + key) as f:
            before = int(f.read())
        with open(netns.NF + key, "w") as f:
            f.write(str(want))
        with open(netns.NF + key) as f:
            out[key] = {"before": before, "after": int(f.read())}
    return out


class Sender:
    """Unique UDP flows, one datagram each: IPv4 to (127.<1+b>.x.y, port) from one
    socket, IPv6 to (::1, port) from a new source socket every 64512 ports."""

    def __init__(self):
        self.v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.v6 = None
        self.i4 = self.i6 = 0
        self.sent = self.errors = 0
        self.nports = len(netns.UDP_PORTS)

    def one(self):
        n = self.sent + self.errors
        try:
            if n % V6_EVERY == V6_EVERY - 1:
                block, port = divmod(self.i6, self.nports)
                if port == 0 or self.v6 is None:
                    if self.v6 is not None:
                        self.v6.close()
                    self.v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                self.i6 += 1
                self.v6.sendto(b"s", ("::1", netns.UDP_PORTS.start + port))
            else:
                block, port = divmod(self.i4, self.nports)
                self.i4 += 1
                self.v4.sendto(b"s", (netns._v4(block, 1), netns.UDP_PORTS.start + port))
            self.sent += 1
        except OSError:
            self.errors += 1


def _w_sender(flows, rate, timeout):
    """Prefill ``flows`` whose expiries spread evenly over the next ``timeout``
    seconds (the UDP timeout is set per generation while sending), then send
    ``rate`` new flows a second with ``timeout`` until stdin closes."""
    netns._refuse_host_namespace()
    s = Sender()
    gens = max(1, int(timeout))
    t0 = time.monotonic()
    for g in range(gens):
        _w_set({"nf_conntrack_udp_timeout": max(1, round((g + 1) * timeout / gens))})
        for _ in range(flows * (g + 1) // gens - flows * g // gens):
            s.one()
    _w_set({"nf_conntrack_udp_timeout": int(timeout)})
    prefill = {"prefilled": s.sent, "errors": s.errors, "prefill_s": time.monotonic() - t0}
    print(json.dumps(prefill), flush=True)
    s.sent = s.errors = 0
    start = time.monotonic()
    late = 0.0
    while True:
        r, _, _ = select.select([sys.stdin], [], [], 0.005)
        if r and not sys.stdin.buffer.read1(4096):
            break                                   # the parent closed our stdin: stop
        due = int((time.monotonic() - start) * rate)
        if due - s.sent - s.errors > rate:          # more than 1 s behind: note it, skip
            late += (due - s.sent - s.errors) / rate
            start += (due - s.sent - s.errors) / rate
            due = s.sent + s.errors
        while s.sent + s.errors < due:
            s.one()
    wall = time.monotonic() - start
    print(json.dumps(dict(prefill, sent=s.sent, send_errors=s.errors, seconds=wall,
                          rate=s.sent / wall if wall else 0.0, skipped_s=late)), flush=True)


class SenderProc:
    """The in-namespace sender, closed (stdin EOF) by ``close()``."""

    def __init__(self, ns, flows, rate, timeout):
        self.proc = subprocess.Popen(ns.argv(sys.executable, os.path.abspath(__file__), "--sender",
                                             flows, rate, timeout),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError("the sender died before it was ready")
        self.prefill = json.loads(line)
        self.final = None

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                out = self.proc.stdout.read()
                self.proc.wait(10)
                lines = [l for l in out.splitlines() if l.strip()]
                if lines:
                    self.final = json.loads(lines[-1])
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


# --- outside ---------------------------------------------------------------------------

def set_sysctls(ns, values):
    return json.loads(ns.run(sys.executable, os.path.abspath(__file__), "--set",
                             json.dumps(values)).stdout)


def read_sysctls(ns, keys=GUARDED):
    out = ns.run("cat", *[netns.NF + k for k in keys]).stdout.split()
    return {k: int(v) for k, v in zip(keys, out)}


def soak(args):
    timeout = args.timeout or max(1, round(args.flows / args.rate))
    res = {"minutes": args.minutes, "flows": args.flows, "rate": args.rate, "udp_timeout": timeout,
           "kernel": platform.release(), "python": platform.python_version(), "code": code_state(),
           "loadavg_start": open("/proc/loadavg").read().split()[:3], "samples": []}
    name = "ftbench-soak-%d" % os.getpid()
    tmpdir = tempfile.mkdtemp(prefix="ftbench-soak-")
    errfile = os.path.join(tmpdir, "flowtop.err")
    tm = Tmux()
    session = "soak"
    try:
        with netns.Namespace(name, keep=args.keep) as ns:
            ns.sysctl({"nf_conntrack_max": 2 * args.flows + 10000})
            res["sysctls_set"] = set_sysctls(ns, {k: 0 for k in GUARDED})
            res["sysctls_before"] = read_sysctls(ns)
            sender = ns.own(SenderProc(ns, args.flows, args.rate, timeout))
            res["prefill"] = sender.prefill
            print("namespace %s: prefilled %d UDP flows in %.1f s (expiring over %d s), "
                  "conntrack -C %d; sending %d new flows/s, nf_conntrack_udp_timeout %d; "
                  "acct/timestamp %s"
                  % (name, sender.prefill["prefilled"], sender.prefill["prefill_s"], timeout,
                     ns.count(), args.rate, timeout, res["sysctls_before"]), flush=True)
            argv = ["env", "TERM=" + TERM, sys.executable, "-m", "flowtop", "-n", "-G",
                    "--loopback", "-t", "1"]
            line = pane_line(ns.argv(*argv), errfile)
            t0 = time.monotonic()
            pid = find_process(tm.start(session, line), is_python_flowtop)
            if pid is None:
                raise RuntimeError("flowtop did not start: %s" % tail(errfile))
            res["pid"] = pid
            end = t0 + 60 * args.minutes
            prev_cpu, prev_busy, prev_t = cpu_seconds(pid), system_busy()[0], time.monotonic()
            nxt = t0 + args.sample
            print("%6s %8s %7s %7s %9s %9s %8s  %s" % ("t s", "RSS MiB", "CPU %", "others%",
                                                       "screen", "ct -C", "diff %", "header notes"),
                  flush=True)
            while True:
                time.sleep(max(0.0, nxt - time.monotonic()))
                if tm.dead(session):
                    res["died"] = "flowtop exited during the soak: %s" % tail(errfile + ".status")
                    print(res["died"], flush=True)
                    break
                lines = tm.capture(session)
                ct = ns.count()
                now = time.monotonic()
                cpu, busy = cpu_seconds(pid), system_busy()[0]
                sample = {"t": now - t0, "rss_kib": status_kib(pid, "VmRSS"),
                          "cpu_pct": 100.0 * (cpu - prev_cpu) / (now - prev_t),
                          "others_pct": 100.0 * ((busy - prev_busy) / CLK_TCK - (cpu - prev_cpu))
                          / (now - prev_t),
                          "conntrack": ct, "header": lines[:2]}
                prev_cpu, prev_busy, prev_t = cpu, busy, now
                c = first_match(FLOWTOP_COUNT, lines)
                sample["screen"] = int(c) if c is not None else None
                head = " ".join(lines[:2])
                m = RESYNC.search(head)
                sample["resynced"] = int(m.group(1)) if m else 0
                m = HEADER_ERROR.search(head)
                sample["header_error"] = m.group(1) if m else None
                if sample["screen"] is not None and ct:
                    sample["diff_rel"] = (sample["screen"] - ct) / ct
                else:
                    sample["diff_rel"] = None
                if not res["samples"]:
                    res["sysctls_during"] = read_sysctls(ns)
                res["samples"].append(sample)
                notes = []
                if sample["resynced"]:
                    notes.append("resynced %d" % sample["resynced"])
                if sample["header_error"]:
                    notes.append("error: " + sample["header_error"])
                m = re.search(r"\(rates: [^)]*\)", head)
                if m:
                    notes.append(m.group(0))
                diff = sample["diff_rel"]
                print("%6.0f %8.1f %7.1f %7.0f %9s %9d %8s  %s"
                      % (sample["t"], sample["rss_kib"] / 1024, sample["cpu_pct"],
                         sample["others_pct"], sample["screen"], ct,
                         "n/a" if diff is None else "%+.2f" % (100 * diff), "; ".join(notes)),
                      flush=True)
                nxt += args.sample
                if nxt > end + 0.5:
                    break
            res["vmhwm_kib"] = status_kib(pid, "VmHWM") if not tm.dead(session) else None
            res["exit"] = quit_pane(tm, session, pid, res, errfile + ".status")
            screen = tm.capture(session, history=True)
            err = tail(errfile, 4000)
            res["pane_after_exit"] = [l for l in screen if l.strip()][-10:]
            res["stderr"] = err
            res["traceback"] = any("Traceback" in l for l in screen) or "Traceback" in err
            res["sysctls_after"] = read_sysctls(ns)
            res["conntrack_end"] = ns.count()
            sender.close()
            res["sender"] = sender.final
            tm.kill_session(session)
    finally:
        tm.kill()
        shutil.rmtree(tmpdir, ignore_errors=True)
    res["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    return res


def summary(res):
    s = res["samples"]
    out = ["", "soak summary: %g min, target %d flows, %d new flows/s, "
           "nf_conntrack_udp_timeout %d s; kernel %s, Python %s, loadavg at start %s, at end %s"
           % (res["minutes"], res["flows"], res["rate"], res["udp_timeout"], res["kernel"],
              res["python"], " ".join(res["loadavg_start"]), " ".join(res["loadavg_end"])),
           "code: %s" % res.get("code", "?")]
    snd = res.get("sender") or {}
    if snd:
        out.append("sender: %d new flows in %.0f s = %.0f/s (%d send errors, %.1f s skipped behind)"
                   % (snd["sent"], snd["seconds"], snd["rate"], snd["send_errors"],
                      snd["skipped_s"]))
    if not s:
        out.append("no samples")
        return "\n".join(out)
    cts = [x["conntrack"] for x in s]
    out.append("conntrack -C: min %d, mean %.0f, max %d"
               % (min(cts), statistics.mean(cts), max(cts)))
    first = [x for x in s if x["t"] <= 60.5] or s[:1]
    after = [x for x in s if x["t"] > 60.5]
    ref = first[-1]["rss_kib"]
    line = "RSS: first minute %.1f-%.1f MiB (at %.0f s: %.1f MiB)" % (
        min(x["rss_kib"] for x in first) / 1024, max(x["rss_kib"] for x in first) / 1024,
        first[-1]["t"], ref / 1024)
    if after:
        lo, hi = min(x["rss_kib"] for x in after), max(x["rss_kib"] for x in after)
        flat = lo >= 0.9 * ref and hi <= 1.1 * ref
        line += "; after: %.1f-%.1f MiB (%+.1f %% / %+.1f %%), last %.1f MiB -> %s" % (
            lo / 1024, hi / 1024, 100 * (lo - ref) / ref, 100 * (hi - ref) / ref,
            after[-1]["rss_kib"] / 1024,
            "flat within +-10 %" if flat else "NOT flat within +-10 %")
    if res.get("vmhwm_kib"):
        line += "; VmHWM %.1f MiB" % (res["vmhwm_kib"] / 1024)
    out.append(line)
    signed = [x for x in s if x["diff_rel"] is not None]
    if signed:
        worst = max(signed, key=lambda x: abs(x["diff_rel"]))
        out.append("screen count vs conntrack -C: max |diff| %.2f %% (at %.0f s: %d vs %d), "
                   "mean %+.2f %%" % (100 * abs(worst["diff_rel"]), worst["t"], worst["screen"],
                                      worst["conntrack"],
                                      100 * statistics.mean(x["diff_rel"] for x in signed)))
    missing = sum(1 for x in s if x["screen"] is None)
    if missing:
        out.append("samples without a count on screen: %d of %d" % (missing, len(s)))
    cpus = [x["cpu_pct"] for x in s[1:]] or [s[0]["cpu_pct"]]
    out.append("CPU (%% of one core, per %gs sample): mean %.1f, median %.1f, max %.1f; "
               "others' CPU meanwhile: mean %.0f %%"
               % (res.get("sample", 10), statistics.mean(cpus), statistics.median(cpus), max(cpus),
                  statistics.mean(x.get("others_pct", 0) for x in s)))
    head, tail_ = [x for x in s if x["t"] <= 120.5], [x for x in s if x["t"] > s[-1]["t"] - 120]
    if len(s) * res.get("sample", 10) >= 300 and head and tail_:
        out.append("CPU trend: first 2 min mean %.1f %% (others %.0f %%), last 2 min mean %.1f %% "
                   "(others %.0f %%)" % (statistics.mean(x["cpu_pct"] for x in head),
                                         statistics.mean(x.get("others_pct", 0) for x in head),
                                         statistics.mean(x["cpu_pct"] for x in tail_),
                                         statistics.mean(x.get("others_pct", 0) for x in tail_)))
    rs = [x["resynced"] for x in s]
    errs = [x["header_error"] for x in s if x["header_error"]]
    out.append("header: resync mentioned in %d of %d samples (max 'resynced %d'); "
               "errors in header: %s" % (sum(1 for r in rs if r), len(s), max(rs),
                                         "%d samples, e.g. %r" % (len(errs), errs[0])
                                         if errs else "none"))
    out.append("exit after q: %s (process gone %s s after q); traceback: %s; stderr: %s%s"
               % (res.get("exit"), fmt_s(res.get("quit_exit_s")),
                  "YES" if res.get("traceback") else "none",
                  repr(res["stderr"][-300:]) if res.get("stderr") else "empty",
                  "; " + res["died"] if res.get("died") else ""))
    before, during = res.get("sysctls_before"), res.get("sysctls_during")
    after_ = res.get("sysctls_after")
    ok = after_ == before and all(v == 0 for v in (after_ or {}).values())
    out.append("sysctls acct/timestamp: before %s, during %s, after %s -> %s"
               % (fmt_sys(before), fmt_sys(during), fmt_sys(after_),
                  "restored" if ok else "NOT restored"))
    return "\n".join(out)


def fmt_s(v):
    return "?" if v is None else "%.2f" % v


def fmt_sys(d):
    return "/".join(str(d[k]) for k in GUARDED) if d else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--flows", type=int, default=100000, help="flows to keep live (default 100000)")
    ap.add_argument("--rate", type=int, default=2000, help="new flows a second (default 2000)")
    ap.add_argument("--timeout", type=int, default=0,
                    help="nf_conntrack_udp_timeout in the namespace (default flows/rate)")
    ap.add_argument("--sample", type=float, default=10.0,
                    help="seconds between samples (default 10)")
    ap.add_argument("--keep", action="store_true", help="leave the namespace in place")
    ap.add_argument("--json-out", metavar="FILE", help="also write every sample as JSON")
    ap.add_argument("--sender", nargs=3, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--set", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sender:
        _w_sender(*args.sender)
        return 0
    if args.set:
        print(json.dumps(_w_set(json.loads(args.set))))
        return 0
    if args.minutes <= 0 or args.flows < 1 or args.rate < 1 or args.sample <= 0:
        ap.error("--minutes, --flows, --rate and --sample must be positive")
    if os.geteuid() != 0:
        sys.exit("bench/soak.py needs root (network namespaces, nftables)")
    netns.exit_on_signals()
    netns.compile_package(ROOT)       # .pyc as an install has them
    res = soak(args)
    res["sample"] = args.sample
    print(summary(res))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(res, f, indent=2)
    return 0 if not res.get("traceback") and res.get("exit") == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:       # the namespace and tmux server are gone by now
        sys.exit(130)

"""Network namespaces full of real conntrack flows, for flowtop's benchmarks.

Why a namespace: a benchmark needs a conntrack table of a known size, with
accounting and timestamps on, without touching the host's firewall or
sysctls and without sending a packet anywhere but a loopback nobody else
uses.  Deleting the namespace deletes its whole table at once.

Everything that must run *inside* the namespace runs in a child started with
``ip netns exec`` (``os.setns`` only exists from Python 3.12 on).  This file
is that child's program too: ``python3 netns.py worker KIND ARGS...``.
Namespace names start with ``ftbench-`` (other tooling ignores that prefix);
``python3 bench/netns.py reap`` deletes ``ftbench-*-<pid>`` namespaces whose
creator is gone (left behind by a SIGKILL).  Stdlib only, Python 3.9+.
"""

import json
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import time

PREFIX = "ftbench-"
HERE = os.path.abspath(__file__)

# Conntrack only tracks a namespace once some rule there uses it: `ct state`
# in both local hooks makes every loopback packet create or match an entry.
RULESET = """\
table inet ftbench {
    chain input {
        type filter hook input priority 0; policy accept;
        ct state new,established,related accept
    }
    chain output {
        type filter hook output priority 0; policy accept;
        ct state new,established,related accept
    }
}
"""

NF = "/proc/sys/net/netfilter/"
# Counters and timestamps on (what flowtop shows); one-packet UDP and ICMP
# flows would otherwise expire after 30 s, in the middle of a long benchmark.
SYSCTLS = {
    "nf_conntrack_acct": 1,
    "nf_conntrack_timestamp": 1,
    "nf_conntrack_udp_timeout": 3600,
    "nf_conntrack_udp_timeout_stream": 3600,
    "nf_conntrack_icmp_timeout": 3600,
    "nf_conntrack_icmpv6_timeout": 3600,
}

UDP_PORTS = range(1024, 65536)       # destination ports per address/socket


def compile_package(root):
    """Byte-compile flowtop under ``root`` as an installed copy would be
    (pip writes the .pyc files at install time), so that timed runs do not
    compile every module from source first: with PYTHONDONTWRITEBYTECODE
    set, as on some machines, no run would ever write them.  Returns the
    compileall status (0: done)."""
    return subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(root, "flowtop")],
                          stdout=subprocess.DEVNULL).returncode


class Namespace:
    """``with Namespace(name) as ns:`` a netns with lo up, conntrack on, SYSCTLS set.

    Children registered with ``ns.own()`` (long-lived fillers) are closed,
    leftover processes inside the namespace are killed and the namespace is
    deleted on exit, including exits by exception; SIGTERM/SIGHUP become
    SystemExit while inside (see ``exit_on_signals``).  ``keep=True`` leaves
    the namespace (and its flows) for inspection.
    """

    def __init__(self, name, keep=False):
        if not name.startswith(PREFIX):
            raise ValueError("namespace name must start with %r: %r" % (PREFIX, name))
        self.name = name
        self.keep = keep
        self.children = []
        self.sysctl_report = {}

    def __enter__(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            self.run("ip", "link", "set", "lo", "up")
            self.run("nft", "-f", "-", input=RULESET)
            self.sysctl_report = self.sysctl(SYSCTLS)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def argv(self, *cmd):
        """``cmd`` run inside; workers learn the caller's netns to refuse running in it."""
        os.environ.setdefault("FTBENCH_OUTER_NETNS", str(os.stat("/proc/self/ns/net").st_ino))
        return ["ip", "netns", "exec", self.name] + [str(c) for c in cmd]

    def run(self, *cmd, input=None, check=True, **kw):
        """Run ``cmd`` inside the namespace; returns the CompletedProcess (text)."""
        return subprocess.run(self.argv(*cmd), input=input, check=check, text=True,
                              stdout=kw.pop("stdout", subprocess.PIPE), **kw)

    def worker(self, kind, *args):
        """Run this file's worker ``kind`` inside the namespace; its JSON answer."""
        out = self.run(sys.executable, HERE, "worker", kind, *args).stdout
        return json.loads(out)

    def sysctl(self, values, exact=False):
        """Raise netfilter sysctls *inside the namespace* to at least ``values``
        (``exact``: set them, lower too: a flood's short UDP timeout).

        Returns {name: {"before", "after", "error"}}: nf_conntrack_max, for
        one, is read-only outside the initial namespace and is only reported.
        """
        return self.worker("sysctl", json.dumps(values), int(exact))

    def count(self):
        """Entries in the namespace's table: ``conntrack -C``, else nf_conntrack_count."""
        try:
            return int(self.run("conntrack", "-C").stdout.split()[0])
        except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
            return int(self.run("cat", NF + "nf_conntrack_count").stdout)

    def own(self, child):
        self.children.append(child)
        return child

    def close(self):
        """Close children, kill stragglers inside, delete the namespace (signals held off)."""
        old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            for child in reversed(self.children):
                child.close()
            self.children = []
            if self.keep:
                return
            self._kill_inside()
            subprocess.run(["ip", "netns", "del", self.name], check=False)
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _kill_inside(self):
        """Processes still in the namespace are ours (we started every one): end them by pid."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = subprocess.run(["ip", "netns", "pids", self.name], text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.split()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(int(pid), sig)
                except (ProcessLookupError, ValueError):
                    pass
            time.sleep(0.2)


def exit_on_signals():
    """Turn SIGTERM and SIGHUP into SystemExit so ``finally``/``with`` clean up."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


class Holder:
    """A worker that keeps its sockets (and so its flows) open until ``close()``."""

    def __init__(self, ns, kind, *args):
        self.proc = subprocess.Popen(ns.argv(sys.executable, HERE, "worker", kind, *args),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError("%s worker died before it was ready" % kind)
        self.info = json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()             # the worker's cue to close and exit
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def fill_udp(ns, n, family=socket.AF_INET, start=0, workers=1, distinct=False):
    """``n`` one-datagram UDP flows; returns {"sent", "errors", "s"}.

    Each flow is a distinct (destination address, port): IPv4 to 127.1.x.y,
    IPv6 to ::1 from a new source socket every 64512 ports.  The ports are
    closed, which still creates an (unreplied) entry: conntrack confirms a
    locally sent packet before it is delivered, and the ICMP port-unreachable
    that comes back is RELATED, not a new flow.  ``start`` continues a
    numbering (top-ups); ``workers`` senders run in parallel on disjoint ranges.
    ``distinct``: each IPv4 flow to an address of its own (127.1.0.0 + i), as
    a router's table of many remote hosts (route lookups per address).
    """
    if n <= 0:
        return {"sent": 0, "errors": 0, "s": 0.0}
    t0 = time.monotonic()
    step = -(-n // workers)
    procs = [subprocess.Popen(ns.argv(sys.executable, HERE, "worker", "udp", int(family), start + i,
                                      min(step, n - i), int(distinct)),
                              stdout=subprocess.PIPE, text=True)
             for i in range(0, n, step)]
    res = [json.loads(p.communicate()[0] or "{}") for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError("udp worker failed")
    return {"sent": sum(r["sent"] for r in res), "errors": sum(r["errors"] for r in res),
            "s": time.monotonic() - t0}


def fill_icmp(ns, n, family=socket.AF_INET):
    """``n`` ICMP echo flows (request + kernel's reply) with distinct ids; IPv4
    spreads over 127.2.x.1, IPv6 uses ::1 (so at most 65536)."""
    if n <= 0:
        return {"sent": 0, "errors": 0, "s": 0.0}
    return ns.worker("icmp", int(family), n)


def fill_tcp(ns, n, family=socket.AF_INET):
    """``n`` established TCP connections to a listener in the namespace, held
    open until the returned Holder is closed (also closed with ``ns``)."""
    return ns.own(Holder(ns, "tcp", int(family), n))


def reap():
    """Delete ftbench-*-<pid> namespaces whose creating process no longer exists."""
    names = subprocess.run(["ip", "netns", "list"], text=True, stdout=subprocess.PIPE).stdout
    for name in (line.split()[0] for line in names.splitlines() if line.strip()):
        m = re.match(re.escape(PREFIX) + r".*-(\d+)$", name)
        if m and not os.path.exists("/proc/" + m.group(1)):
            print("deleting stale namespace", name)
            Namespace(name).close()


# --- workers: run inside the namespace ---------------------------------------

def _refuse_host_namespace():
    """Belt and braces: never write sysctls or send from the caller's namespace."""
    if str(os.stat("/proc/self/ns/net").st_ino) == os.environ.get("FTBENCH_OUTER_NETNS"):
        sys.exit("refusing to run a bench worker in the caller's network namespace")


def _w_sysctl(values, exact=0):
    report = {}
    for key, want in json.loads(values).items():
        path = NF + key
        r = report[key] = {"before": None, "after": None, "error": None}
        try:
            with open(path) as f:
                r["before"] = r["after"] = int(f.read())
            if r["before"] < want or (int(exact) and r["before"] != want):
                with open(path, "w") as f:
                    f.write(str(want))
                with open(path) as f:
                    r["after"] = int(f.read())
        except OSError as e:
            r["error"] = e.strerror or str(e)
    return report


def _v4(k, second):
    """Loopback address number ``k`` counted from 127.<second>.0.0; from
    10.<second>.0.0 when FTBENCH_V4_NET=10 (live.py --remote routes 10/8 to lo,
    so flows to addresses no view hides as loopback)."""
    k += second << 16
    return "%s.%d.%d.%d" % (os.environ.get("FTBENCH_V4_NET", "127"), k >> 16, (k >> 8) & 255,
                            k & 255)


def _w_udp(family, start, n, distinct=0):
    family, start, n, distinct = int(family), int(start), int(n), int(distinct)
    nports = 1 if distinct else len(UDP_PORTS)     # distinct: an address per flow (v4)
    payload = b"f"
    sent = errors = 0
    sock, sock_block = None, None
    for i in range(start, start + n):
        block, port = divmod(i, nports)
        port += UDP_PORTS.start
        if family == socket.AF_INET:
            addr = _v4(block, 1)
            if sock is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            addr = "::1"
            if block != sock_block:           # a new source port per 64512 flows
                if sock is not None:
                    sock.close()
                sock, sock_block = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM), block
        try:
            sock.sendto(payload, (addr, port))
            sent += 1
        except OSError:
            errors += 1
    if sock is not None:
        sock.close()
    return {"sent": sent, "errors": errors}


def _checksum(data):
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def _w_icmp(family, n):
    family, n = int(family), int(n)
    v6 = family == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    sock = socket.socket(family, socket.SOCK_RAW, proto)   # the kernel fills the ICMPv6 checksum
    sent = errors = 0
    for i in range(n):
        ident = i & 0xFFFF
        if v6:
            pkt, addr = struct.pack("!BBHHH", 128, 0, 0, ident, 1) + b"flowtop!", ("::1", 0)
        else:
            body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"flowtop!"
            pkt = body[:2] + struct.pack("!H", _checksum(body)) + body[4:]
            addr = ("127.2.%d.1" % (i >> 16), 0)
        try:
            sock.sendto(pkt, addr)
            sent += 1
        except OSError:
            errors += 1
    time.sleep(0.2)                     # let the echo replies pass through conntrack
    sock.close()
    return {"sent": sent, "errors": errors}


def _w_tcp(family, n):
    """Connect ``n`` clients in batches below the accept backlog, print ready, hold."""
    family, n = int(family), int(n)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * n + 64), hard))
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.bind((host, 0))
    ls.listen(1024)
    keep = []
    while len(keep) < 2 * n:
        batch = min(512, n - len(keep) // 2)
        for _ in range(batch):
            c = socket.socket(family, socket.SOCK_STREAM)
            c.connect(ls.getsockname()[:2])
            keep.append(c)
        keep.extend(ls.accept()[0] for _ in range(batch))
    print(json.dumps({"connections": n, "port": ls.getsockname()[1]}), flush=True)
    sys.stdin.read()                    # hold until the parent closes our stdin
    for s in keep:
        s.close()
    return None


def _worker(kind, args):
    _refuse_host_namespace()
    t0 = time.monotonic()
    res = {"sysctl": _w_sysctl, "udp": _w_udp, "icmp": _w_icmp, "tcp": _w_tcp}[kind](*args)
    if res is not None:
        if kind != "sysctl":
            res["s"] = time.monotonic() - t0
        print(json.dumps(res))


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        _worker(sys.argv[2], sys.argv[3:])
    elif sys.argv[1:2] == ["reap"]:
        reap()
    else:
        sys.exit("usage: netns.py reap | worker KIND ARGS...")

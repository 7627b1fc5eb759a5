"""Network namespaces with real conntrack flows, for kernel tests and for
recording fixtures.  No pytest here: ``record_fixtures.py`` uses it too.

Every namespace is created and removed by the code that uses it; nothing
here touches the host namespace's firewall or sysctls, and traffic stays on
the namespace's own loopback.
"""

import json
import os
import secrets
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Conntrack only tracks a namespace once a rule there uses it.  Real TCP to
# port 5001 gets a connmark, so some real flows carry a mark.
RULESET = """\
table inet flowtop_test {
    chain output {
        type filter hook output priority 0; policy accept;
        tcp dport 5001 ct mark set 42
        ct state new,established,related accept
    }
    chain input {
        type filter hook input priority 0; policy accept;
        ct state new,established,related accept
    }
}
"""

# Long timeouts so one-packet flows outlive a test; acct/timestamp on.
SYSCTLS = {
    "net.netfilter.nf_conntrack_acct": 1,
    "net.netfilter.nf_conntrack_timestamp": 1,
    "net.netfilter.nf_conntrack_udp_timeout": 600,
    "net.netfilter.nf_conntrack_udp_timeout_stream": 600,
    "net.netfilter.nf_conntrack_icmp_timeout": 600,
    "net.netfilter.nf_conntrack_icmpv6_timeout": 600,
    "net.netfilter.nf_conntrack_generic_timeout": 600,
}


def have(*tools):
    from shutil import which
    return all(which(t) for t in tools)


def kernel_ready(*tools):
    """(ok, reason): root, ip, nft and conntrack present, and ``tools``."""
    if os.geteuid() != 0:
        return False, "needs root"
    missing = [t for t in ("ip", "nft", "conntrack") + tools if not have(t)]
    if missing:
        return False, "missing tools: %s" % " ".join(missing)
    return True, ""


def flowtop_pid(ns):
    """The pid of the one flowtop inside the namespace (``ip netns exec`` execs it)."""
    pids = subprocess.run(["ip", "netns", "pids", ns.name], capture_output=True,
                          text=True, check=True).stdout.split()
    found = []
    for pid in pids:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"flowtop" in argv:
            found.append(int(pid))
    assert len(found) == 1, "flowtop processes in %s: %r" % (ns.name, found)
    return found[0]


class Netns:
    """``with Netns("snap") as ns:`` a fresh ``ftest-snap-XXXX`` namespace."""

    def __init__(self, tag, sysctls=None, ruleset=RULESET):
        self.name = "ftest-%s-%s" % (tag, secrets.token_hex(3))
        self.sysctls = SYSCTLS if sysctls is None else sysctls
        self.ruleset = ruleset
        self.procs = []

    def __enter__(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            self.run("ip", "link", "set", "lo", "up")
            if self.ruleset:
                self.run("nft", "-f", "-", input=self.ruleset)
            for k, v in self.sysctls.items():
                self.run("sysctl", "-q", "-w", "%s=%s" % (k, v))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def argv(self, *cmd):
        return ["ip", "netns", "exec", self.name] + [str(c) for c in cmd]

    def run(self, *cmd, input=None, check=True, timeout=60, env=None):
        return subprocess.run(self.argv(*cmd), input=input, check=check, text=True,
                              capture_output=True, timeout=timeout, env=env)

    def popen(self, *cmd, **kw):
        p = subprocess.Popen(self.argv(*cmd), **kw)
        self.procs.append(p)
        return p

    def flowtop(self, *args, check=False, timeout=60, python=None):
        """``python3 -m flowtop ARGS`` inside, from the repo checkout."""
        env = dict(os.environ, PYTHONPATH=REPO)
        return self.run(python or sys.executable, "-m", "flowtop", *args, check=check,
                        timeout=timeout, env=env)

    def sysctl(self, name):
        return self.run("cat", "/proc/sys/" + name.replace(".", "/")).stdout.strip()

    def conntrack_list(self):
        """``conntrack -L -o extended,id`` text (stdout only)."""
        return self.run("conntrack", "-L", "-o", "extended,id").stdout

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    if p.stdin:
                        p.stdin.close()
                    p.wait(3)
                except (OSError, subprocess.TimeoutExpired):
                    p.kill()
                    p.wait()
        self.procs = []
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class NetnsGroup:
    """Several Netns set up as one: ``members`` entered in order, then
    ``_wire()``; ``close()`` removes those entered, in reverse, also when
    the set-up fails half way."""

    members = ()

    def __enter__(self):
        self.opened = []
        try:
            for ns in self.members:
                ns.__enter__()
                self.opened.append(ns)
            self._wire()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _wire(self):
        raise NotImplementedError

    def close(self):
        for ns in reversed(getattr(self, "opened", ())):
            ns.close()
        self.opened = []


# Runs inside the namespace: real TCP (v4, v6) and UDP (v4, v6) with payload
# both ways, kept open until stdin closes, so states and counters hold still.
TRAFFIC = r"""
import json, socket, sys, threading
socks = []
def tcp(family, host, port, out, back):
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port)); srv.listen(4)
    cli = socket.create_connection((host, port))
    conn, _ = srv.accept()
    cli.sendall(b"x" * out); got = 0
    while got < out: got += len(conn.recv(65536))
    conn.sendall(b"y" * back); got = 0
    while got < back: got += len(cli.recv(65536))
    socks.extend([srv, cli, conn])
    return cli.getsockname()[1]
def udp(family, host, port, out, back):
    srv = socket.socket(family, socket.SOCK_DGRAM); srv.bind((host, port))
    cli = socket.socket(family, socket.SOCK_DGRAM); cli.connect((host, port))
    cli.send(b"u" * out); data, addr = srv.recvfrom(65536)
    srv.sendto(b"v" * back, addr); cli.recv(65536)
    socks.extend([srv, cli])
    return cli.getsockname()[1]
ports = {
  "tcp4": tcp(socket.AF_INET, "127.0.0.1", 5001, 3000, 70000),
  "tcp6": tcp(socket.AF_INET6, "::1", 5002, 5000, 1200),
  "udp4": udp(socket.AF_INET, "127.0.0.1", 5353, 100, 400),
  "udp6": udp(socket.AF_INET6, "::1", 5354, 200, 20),
}
print(json.dumps(ports), flush=True)
sys.stdin.read()
"""

# Entries no local traffic can make: inserted with conntrack -I.
INSERTED = (
    "-p sctp -s 10.9.0.1 -d 10.9.0.2 --sport 1000 --dport 2000 --state ESTABLISHED"
    " --orig-vtag 1 --reply-vtag 2 -t 500 -u ASSURED",
    "-p udplite -s 10.9.0.1 -d 10.9.0.2 --sport 7 --dport 8 -t 500",
    "-p gre -s 10.9.0.1 -d 10.9.0.2 --srckey 0x11 --dstkey 0x22 -t 500",
    "-p dccp -s 10.9.0.1 -d 10.9.0.2 --sport 7 --dport 8 --state OPEN --role client -t 500",
    "-p tcp -s 10.9.0.1 -d 10.9.0.3 --sport 1111 --dport 443 --state ESTABLISHED -t 500 -m 7 -w 3",
    "-p tcp -s 2001:db8::1 -d 2001:db8::2 --sport 2222 --dport 80 --state TIME_WAIT -t 100",
    "-p udp -s 10.9.0.4 -d 10.9.0.5 --sport 53 --dport 5353 -t 500 -m 0xdeadbeef",
    "-p icmpv6 -s fd00::1 -d fd00::2 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 77 -t 500",
)


def populate(ns):
    """Fill ``ns`` with the standard mix; returns the traffic child's ports.

    Real TCP/UDP over IPv4 and IPv6 (kept open), ICMP and ICMPv6 echo, and
    the INSERTED entries (SCTP, UDP-lite, GRE with keys, DCCP, a mark, a
    non-zero zone).
    """
    p = ns.popen(sys.executable, "-c", TRAFFIC, stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line:
        raise RuntimeError("traffic generator failed")
    ports = json.loads(line)
    ns.run("ping", "-c", "2", "-i", "0.2", "-W", "1", "127.0.0.1")
    ns.run("ping", "-6", "-c", "1", "-W", "1", "::1")
    for spec in INSERTED:
        ns.run("conntrack", "-I", *spec.split())
    time.sleep(0.05)
    return ports

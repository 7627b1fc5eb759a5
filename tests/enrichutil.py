"""Helpers for the end-to-end "who and where" tests: flowtop's own outputs
(``--once`` text, JSON, CSV, the curses view in tmux) inside namespaces.

No pytest here except through the imported topology of
``tests/kernel/test_iface_kernel.py`` (reused, with its own tags).
"""

import csv
import io
import json
import os
import re
import secrets
import shlex
import subprocess
import sys

from tests.nsutil import REPO, Netns, NetnsGroup
from tests.tmuxutil import Tmux, box, parse_table, pane_command, read_exit
from tests.viewutil import UNSAFE

FIX = os.path.join(REPO, "tests", "fixtures")
CITY_DB = os.path.join(FIX, "geoip-city.mmdb")
ASN_DB = os.path.join(FIX, "geoip-asn.mmdb")
GEO_ARGS = ("--geoip-db", CITY_DB, "--geoip-db", ASN_DB)

SGR_ONLY = re.compile(r"\x1b\[[0-9;:]*m")

# A file name with an escape sequence, a newline and a bidi override, and
# what flowtop must show instead (each unsafe character becomes '?').
HOSTILE_FILE = "\x1b[2Jevil\n\u202ename"
HOSTILE_SHOWN = "?[2Jevil??name"

AF_INET, AF_INET6 = 2, 10

# argv: proto family host port.  Prints {"pid", "port"}; answers every
# datagram / each chunk of a connection with "pong"; ends when stdin closes.
SERVER = r"""
import json, os, select, socket, sys
proto, family, host, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
tcp = proto == "tcp"
s = socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
if tcp:
    s.listen(16)
print(json.dumps({"pid": os.getpid(), "port": s.getsockname()[1]}), flush=True)
conns = []
while True:
    ready = select.select([0, s] + conns, [], [])[0]
    if 0 in ready and not os.read(0, 64):
        break
    if s in ready:
        if tcp:
            conns.append(s.accept()[0])
        else:
            data, peer = s.recvfrom(65536)
            s.sendto(b"pong", peer)
    for c in [c for c in conns if c in ready]:
        if c.recv(65536):
            c.sendall(b"pong")
        else:
            conns.remove(c)
"""

# argv: a JSON list of [proto, family, host, port, payload bytes].  Opens
# each flow (TCP connect, or connected UDP), sends the payload, waits for
# the first answer, prints {"pid", "ports": [local port of each]} and keeps
# every socket open until stdin closes.
CLIENT = r"""
import json, os, socket, sys
socks, ports = [], []
for proto, family, host, port, size in json.loads(sys.argv[1]):
    if proto == "tcp":
        c = socket.create_connection((host, port), timeout=10)
        c.sendall(b"x" * size)
    else:
        c = socket.socket(family, socket.SOCK_DGRAM)
        c.settimeout(10)
        c.connect((host, port))
        c.send(b"u" * size)
    c.recv(64)
    socks.append(c)
    ports.append(c.getsockname()[1])
print(json.dumps({"pid": os.getpid(), "ports": ports}), flush=True)
sys.stdin.read()
"""

# stdlib http.server over argv[1] on 127.0.0.1; prints its port; serves
# until stdin closes.
HTTP_SERVER = r"""
import functools, http.server, sys, threading
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                      functools.partial(Quiet, directory=sys.argv[1]))
threading.Thread(target=srv.serve_forever, daemon=True).start()
print(srv.server_address[1], flush=True)
sys.stdin.read()
srv.shutdown()
srv.server_close()
"""


def start(ns, program, *args, python=None):
    """Run ``program`` (python -c) in ``ns`` with ``args``; returns its first
    line, parsed as JSON.  The Netns stops it on close (stdin closed)."""
    p = ns.popen(python or sys.executable, "-c", program, *[str(a) for a in args],
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line:
        raise RuntimeError("%s did not start" % (args,))
    return json.loads(line)


def server(ns, proto, family, host, port):
    return start(ns, SERVER, proto, family, host, port)


def client(ns, flows, python=None):
    """flows: [(proto, family, host, port, payload)] -> {"pid", "ports"}."""
    return start(ns, CLIENT, json.dumps([list(f) for f in flows]), python=python)


def proc_comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().rstrip("\n")


# -- flowtop's outputs -----------------------------------------------------------------------

def run(ns, *args, timeout=60):
    """flowtop ARGS in ``ns``; the CompletedProcess, asserting exit 0 and no
    traceback."""
    r = ns.flowtop(*args, timeout=timeout)
    assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.returncode, r.stderr)
    return r


def json_records(ns, *args):
    r = run(ns, "--once", "--json", *args)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def csv_records(ns, *args):
    r = run(ns, "--once", "--csv", *args)
    return list(csv.DictReader(io.StringIO(r.stdout)))


def text_table(ns, *args):
    """``--once`` text: (stdout, rows as dicts of cell text)."""
    r = run(ns, "--once", *args)
    return r.stdout, parse_table(r.stdout.splitlines())[2]


GROUP_NUMBERS = ("FLOWS", "NOACCT", "SENT", "RECEIVED", "PKTS_SENT", "PKTS_RECV", "RATE_SENT",
                 "RATE_RECV")


def group_table(text):
    """Rows of an aggregate table (first column NAME/PROCESS/..., then
    number columns: FLOWS [NOACCT] SENT RECEIVED PKTS_SENT PKTS_RECV, and
    RATE_SENT RATE_RECV where the view has rates), with ``--units raw``
    numbers: {label: (flows, sent, received, pkts sent, pkts received)}.
    A title may carry the sort mark (the live view)."""
    lines = text.splitlines()
    ti = next(i for i, ln in enumerate(lines)
              if {"FLOWS", "PKTS_SENT"} <= {w.rstrip("\u25b2\u25bc*") for w in ln.split()})
    titles = [w.rstrip("\u25b2\u25bc*") for w in lines[ti].split()]
    numbers = [t for t in titles if t in GROUP_NUMBERS]
    out = {}
    for ln in lines[ti + 1:]:
        if not ln.strip() or ln.startswith("q quit"):
            break
        words = ln.split()
        cells = dict(zip(numbers, words[-len(numbers):]))
        if not (cells["SENT"].endswith("B") and cells["RECEIVED"].endswith("B")):
            # ValueError, not assert: a wait_for predicate retries it (CI caught a
            # capture mid-draw, the Processes title over the last frame's flow rows)
            raise ValueError("not a row of this table: %r" % ln)
        out[" ".join(words[:-len(numbers)])] = (
            int(cells["FLOWS"]), int(cells["SENT"][:-1]), int(cells["RECEIVED"][:-1]),
            int(cells["PKTS_SENT"]), int(cells["PKTS_RECV"]))
    return out


def totals(records, key, outbound=lambda r: True):
    """{key(r): (flows, sent, received, packets sent, packets received)}
    summed from flow records; ``outbound(r)``: its original direction is
    "sent"."""
    out = {}
    for r in records:
        k = key(r)
        if k is None:
            continue
        bo, br = r["bytes_orig"] or 0, r["bytes_reply"] or 0
        po, pr = r["packets_orig"] or 0, r["packets_reply"] or 0
        if not outbound(r):
            bo, br, po, pr = br, bo, pr, po
        f, s, rc, ps, prc = out.get(k, (0, 0, 0, 0, 0))
        out[k] = (f + 1, s + bo, rc + br, ps + po, prc + pr)
    return out


def group_records(records):
    """JSON group records (``--view X --once --json``) -> {key: tuple}."""
    return {g["key"]: (g["flows"], g["bytes_sent"], g["bytes_received"], g["packets_sent"],
                       g["packets_received"]) for g in records}


def strings_of(value):
    """Every str inside a parsed JSON value (keys too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings_of(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_of(v)


def assert_clean(text, what):
    """``text`` (a str, or a list of lines) holds no unsafe character."""
    for line in ([text] if isinstance(text, str) else text):
        bad = UNSAFE.findall(line)
        assert not bad, "%s holds unsafe characters %r: %r" % (what, bad, line[:2000])


def fit(text, width):
    """How a cell of ``width`` shows ``text`` (cut with an ellipsis; a
    "name/pid" keeps its pid whole and loses the end of its name)."""
    if len(text) <= width:
        return text
    name, sep, pid = text.rpartition("/")
    if sep and pid.isdigit():
        return name[:width - len(pid) - 2] + "\u2026/" + pid
    return text[:width - 1] + "\u2026"


# -- the curses view in tmux --------------------------------------------------------------------

class LiveView:
    """flowtop's curses view in a private tmux server, inside ``ns``::

        with LiveView(ns, tmp_path, "enp", "--loopback", "-n") as lv:
            lines = lv.wait(lambda ls: ..., 10, "what")
    """

    def __init__(self, ns, workdir, tag, *args, width=160, height=40):
        self.ns, self.workdir = ns, str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.tm = Tmux(tag)
        self.args, self.width, self.height = args, width, height

    def __enter__(self):
        argv = self.ns.argv("env", "TERM=xterm-256color", "PYTHONPATH=" + REPO, sys.executable,
                            "-m", "flowtop", *self.args)
        try:
            self.tm.start(pane_command(argv, self.workdir), self.width, self.height,
                          self.workdir)
        except BaseException:
            self.tm.kill()
            raise
        return self

    def __exit__(self, *exc):
        self.tm.kill()

    def wait(self, predicate, timeout, what, escapes=False):
        return self.tm.wait_for(predicate, timeout, what, escapes=escapes)

    def rows(self, lines):
        return parse_table(lines)[2]

    def quit(self, timeout=10):
        """q, then flowtop's exit status (the pane's shell records it)."""
        self.tm.send("q")
        status, _stty = read_exit(self.workdir, timeout)
        return status

    def stderr(self):
        try:
            with open(os.path.join(self.workdir, "stderr")) as f:
                return f.read()
        except OSError:
            return ""

    def details_of(self, needle, timeout=10):
        """Filter the flows with '/' down to the one matching ``needle``,
        open its details pane (Enter) and return the screen; then close the
        pane and clear the filter again."""
        tm = self.tm
        tm.send("/")
        tm.wait_for(lambda ls: ls[-1].startswith("filter: _"), timeout, "the filter prompt")
        tm.type(needle)
        tm.wait_for(lambda ls: "shown 1 " in ls[1] + " " and ls[-1].startswith(
            "filter: %s_" % needle), timeout, "one flow matching %r" % needle)
        tm.send("Enter")
        tm.wait_for(lambda ls: ls[-1].startswith("q quit"), timeout, "the kept filter")
        tm.send("Enter")
        lines = tm.wait_for(box, timeout, "the details pane of %r" % needle)
        tm.send("Escape")
        tm.wait_for(lambda ls: not any("Flow details" in ln for ln in ls), timeout,
                    "the details pane to close")
        tm.send("Escape")
        tm.wait_for(lambda ls: "/" + needle not in ls[1], timeout, "the filter cleared")
        return lines


def detail_fields(lines):
    """{label: value} of a details pane on screen ("│ label   value │")."""
    out = {}
    for ln in lines:
        m = re.search(r"[\u2502|x] ([a-z][a-z ]*?)  +(\S.*?)\s*[\u2502|x]\s*$", ln)
        if m:
            out.setdefault(m.group(1).strip(), m.group(2))
    return out


def assert_screen_clean(lv, what):
    """Neither the plain nor the attributed capture holds anything but
    printable text and curses' own SGR sequences."""
    plain = lv.tm.capture()
    assert_clean(plain, what)
    esc = "\n".join(lv.tm.capture(escapes=True))
    stripped = SGR_ONLY.sub("", esc)
    assert "\x1b" not in stripped, "%s: a raw escape sequence reached the screen: %r" % (
        what, stripped[stripped.index("\x1b"):][:40])
    return plain


# -- GeoIP: a remote namespace that holds public addresses ----------------------------------

class GeoWorld(NetnsGroup):
    """Two namespaces joined by a veth pair: ``local`` (10.77.0.1,
    fd77::1; conntrack on) and ``remote``, which owns the public
    addresses ``remote_addrs`` and the routes back; ``local`` routes their
    prefixes through ``remote``."""

    def __init__(self, tag, remote_addrs):
        self.local = Netns(tag + "l")
        self.remote = Netns(tag + "r", sysctls={}, ruleset=None)
        self.members = (self.local, self.remote)
        self.remote_addrs = remote_addrs

    def _wire(self):
        lo, re_ = self.local, self.remote
        lo.run("ip", "link", "add", "l0", "type", "veth", "peer", "name", "r0", "netns", re_.name)
        for ns, dev, v4, v6 in ((lo, "l0", "10.77.0.1/24", "fd77::1/64"),
                                (re_, "r0", "10.77.0.2/24", "fd77::2/64")):
            ns.run("ip", "addr", "add", v4, "dev", dev)
            ns.run("ip", "-6", "addr", "add", v6, "dev", dev, "nodad")
            ns.run("ip", "link", "set", dev, "up")
        for a in self.remote_addrs:
            six = ":" in a
            re_.run("ip", *(("-6",) if six else ()), "addr", "add",
                    a + ("/128" if six else "/32"), "dev", "lo")
            lo.run("ip", *(("-6",) if six else ()), "route", "add", a + ("/128" if six else "/32"),
                   "via", "fd77::2" if six else "10.77.0.2")



# -- interfaces: test_iface_kernel's router topology, with this file's own tags ----------------

def router_topology(tag="enr"):
    from tests.kernel.test_iface_kernel import Topology
    t = Topology()
    token = secrets.token_hex(3)
    for ns, role in ((t.client, tag + "c"), (t.router, tag + "r"), (t.server, tag + "s")):
        ns.name = "ftest-%s-%s" % (role, token)
    return t


# -- flowtop -u with its fixed paths, redirected inside a private mount namespace --------------

def update_script(conf_text, varlib, scratch, then=()):
    """A shell script for ``ip netns exec NS sh -c``.  ip netns exec gives the
    command a mount namespace of its own (a slave of the host's), so mounts
    made there never reach the host.  /etc gets an overlay whose upper layer
    is a tmpfs on ``scratch`` (an empty test directory) and which holds
    /etc/flowtop/geoip.conf = ``conf_text``; ``varlib`` (a test directory) is
    bind-mounted over /var/lib.  ``flowtop -u`` then reads the test conf and
    installs into varlib/GeoIP.  ``then``: more flowtop argv lists to run
    there afterwards.  Each run's output ends with ``EXIT <status>``."""
    sc = shlex.quote(str(scratch))
    py = shlex.quote(sys.executable)
    env = "PYTHONPATH=%s" % shlex.quote(REPO)
    lines = [
        "set -e",
        "mount -t tmpfs ftest-etc %s" % sc,
        "mkdir %s/upper %s/work" % (sc, sc),
        "mount -t overlay ftest-etc -o lowerdir=/etc,upperdir=%s/upper,workdir=%s/work /etc"
        % (sc, sc),
        "mkdir -p /etc/flowtop",
        "printf '%%s' %s > /etc/flowtop/geoip.conf" % shlex.quote(conf_text),
        "mount --bind %s /var/lib" % shlex.quote(str(varlib)),
        "set +e",
        "env %s %s -m flowtop -u; echo \"EXIT $?\"" % (env, py),
    ]
    for argv in then:
        lines.append("env %s %s -m flowtop %s; echo \"EXIT $?\"" % (
            env, py, " ".join(shlex.quote(a) for a in argv)))
    return "\n".join(lines)


"""A tiny DNS server for tests: PTR answers from a dict, stdlib only.

It answers what a hostile reverse zone could: any bytes in a PTR label
(escape sequences, newlines, UTF-8 bidi overrides), and answers late when
told to, so tests can check that flowtop neither shows such names nor waits
for slow ones.  No pytest here, so a namespace child can run it::

    python3 tests/dnsutil.py serve --host 127.0.0.1 --port 53 --config JSON

prints ``ready PORT`` once bound and serves until its stdin closes (start
it with ``stdin=PIPE``) or it gets SIGTERM.  In-process: ``with
DnsServer(answers, delays) as srv:`` on ``srv.address``.

``answers`` maps an address ("10.9.0.2", "2001:db8::2") or a reverse name
("2.0.9.10.in-addr.arpa") to its PTR name: a dotted string, or a list of
labels when a label must hold a dot or raw bytes.  A str label is sent as
its UTF-8 bytes; a bytes label (or, in JSON, ``{"hex": "1b5b324a"}``) as
is.  ``delays`` maps the same keys to seconds to wait before answering.
Unknown names get NXDOMAIN.
"""

import ipaddress
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading

T_PTR = 12
C_IN = 1
RCODE_NOERROR, RCODE_FORMERR, RCODE_NXDOMAIN = 0, 1, 3
_HEADER = struct.Struct("!HHHHHH")
HERE = os.path.abspath(__file__)

RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n"
HOSTS = "127.0.0.1 localhost\n::1 localhost\n"
# Only files and dns: no nss-resolve/mdns that could ask the host's resolver.
NSSWITCH = ("passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
            "networks: files\nprotocols: files\nservices: files\n")


def qname_of(key):
    """An address or a reverse name -> the lowercase query name."""
    try:
        return ipaddress.ip_address(key).reverse_pointer
    except ValueError:
        return key.rstrip(".").lower()


def labels_of(name):
    """A PTR value (see the module doc) -> list of label bytes."""
    if isinstance(name, str):
        name = name.rstrip(".").split(".")
    out = []
    for label in name:
        if isinstance(label, dict):
            label = bytes.fromhex(label["hex"])
        elif isinstance(label, str):
            label = label.encode("utf-8")
        if not 0 < len(label) <= 63:
            raise ValueError("label length %d" % len(label))
        out.append(bytes(label))
    return out


def encode_name(labels):
    """Labels -> wire format (no compression)."""
    return b"".join(bytes([len(l)]) + l for l in labels) + b"\0"


def parse_question(data):
    """(id, flags, qname labels, qtype, qclass, end offset) of a query;
    ValueError if malformed."""
    if len(data) < _HEADER.size:
        raise ValueError("short header")
    qid, flags, qdcount = _HEADER.unpack_from(data)[:3]
    if qdcount != 1:
        raise ValueError("qdcount %d" % qdcount)
    labels, off = [], _HEADER.size
    while True:
        if off >= len(data):
            raise ValueError("truncated name")
        n = data[off]
        off += 1
        if n == 0:
            break
        if n > 63 or off + n > len(data):
            raise ValueError("bad label")
        labels.append(data[off:off + n])
        off += n
    if off + 4 > len(data):
        raise ValueError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", data, off)
    return qid, flags, labels, qtype, qclass, off + 4


def build_query(qname, qtype=T_PTR, qid=0x1234):
    """A recursive query for ``qname`` (dotted, ASCII)."""
    labels = [l.encode("ascii") for l in qname.rstrip(".").split(".")]
    return (_HEADER.pack(qid, 0x0100, 1, 0, 0, 0) + encode_name(labels)
            + struct.pack("!HH", qtype, C_IN))


def parse_ptr_response(data):
    """(rcode, [label bytes] of the first PTR answer or None).  Only what
    DnsServer sends: no compression inside the answer's rdata."""
    _qid, flags, _qd, ancount = _HEADER.unpack_from(data)[:4]
    off = parse_question(data)[5]
    for _ in range(ancount):
        if data[off] & 0xC0 == 0xC0:
            off += 2
        else:
            while data[off]:
                off += 1 + data[off]
            off += 1
        rtype, _rclass, _ttl, rdlen = struct.unpack_from("!HHIH", data, off)
        off += 10
        if rtype == T_PTR:
            labels, p = [], off
            while data[p]:
                labels.append(data[p + 1:p + 1 + data[p]])
                p += 1 + data[p]
            return flags & 0xF, labels
        off += rdlen
    return flags & 0xF, None


def ask_ptr(addr, server, timeout=3.0):
    """Ask ``server`` ((host, port)) for the PTR of ``addr`` directly, without
    the system resolver: (rcode, labels or None)."""
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(build_query(qname_of(addr)), server)
        return parse_ptr_response(s.recv(4096))


class DnsServer:
    """UDP DNS server answering PTR queries from ``answers``.

    Each delayed answer waits in its own thread, so one slow name does not
    hold up the others.  ``queries`` records (qname, qtype) as received.
    """

    def __init__(self, answers, delays=None, host="127.0.0.1", port=0, ttl=60):
        self.answers = {qname_of(k): labels_of(v) for k, v in answers.items()}
        self.delays = {qname_of(k): float(v) for k, v in (delays or {}).items()}
        self.host, self.port, self.ttl = host, port, ttl
        self.queries = []
        self._sock = None
        self._thread = None
        self._closed = threading.Event()

    @property
    def address(self):
        return (self.host, self.port)

    def start(self):
        """Bind and serve in a daemon thread; returns self."""
        self.bind()
        self._thread = threading.Thread(target=self.serve_forever, name="dnsutil",
                                        daemon=True)
        self._thread.start()
        return self

    def bind(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.bind((self.host, self.port))
        self.port = self._sock.getsockname()[1]

    def serve_forever(self):
        while not self._closed.is_set():
            try:
                r, _, _ = select.select([self._sock], [], [], 0.2)
                if not r:
                    continue
                data, peer = self._sock.recvfrom(4096)
            except (OSError, ValueError):
                if self._closed.is_set():
                    return
                raise
            self._handle(data, peer)

    def _handle(self, data, peer):
        try:
            qid, flags, labels, qtype, qclass, end = parse_question(data)
        except ValueError:
            if len(data) >= 2:      # FORMERR with the id echoed
                self._send(data[:2] + struct.pack("!HHHHH", 0x8001, 0, 0, 0, 0), peer)
            return
        qname = b".".join(labels).decode("ascii", "replace").lower()
        self.queries.append((qname, qtype))
        reply = self.reply(qid, flags, data[_HEADER.size:end], qname, qtype, qclass)
        delay = self.delays.get(qname, 0.0)
        if delay > 0:
            t = threading.Timer(delay, self._send, (reply, peer))
            t.daemon = True
            t.start()
        else:
            self._send(reply, peer)

    def reply(self, qid, qflags, question, qname, qtype, qclass):
        """The response bytes: the PTR when known, NXDOMAIN when not."""
        labels = self.answers.get(qname)
        answers = b""
        rcode = RCODE_NXDOMAIN if labels is None else RCODE_NOERROR
        if labels is not None and qtype == T_PTR and qclass == C_IN:
            rdata = encode_name(labels)
            answers = b"\xc0\x0c" + struct.pack("!HHIH", T_PTR, C_IN, self.ttl,
                                                len(rdata)) + rdata
        # QR, AA, RA; RD echoed.
        flags = 0x8000 | 0x0400 | 0x0080 | (qflags & 0x0100) | rcode
        return (_HEADER.pack(qid, flags, 1, 1 if answers else 0, 0, 0)
                + question + answers)

    def _send(self, reply, peer):
        try:
            self._sock.sendto(reply, peer)
        except OSError:
            pass                    # closed meanwhile

    def stop(self):
        self._closed.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# -- namespaces ---------------------------------------------------------------------------

def config_json(answers, delays=None):
    """``--config`` text; bytes labels become {"hex": ...}."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [{"hex": l.hex()} if isinstance(l, (bytes, bytearray)) else l for l in v]
        return v
    return json.dumps({"answers": {k: plain(v) for k, v in answers.items()},
                       "delays": delays or {}})


def serve_argv(answers, delays=None, host="127.0.0.1", port=53, python=None):
    """The command that runs a DnsServer in a child process."""
    return [python or sys.executable, HERE, "serve", "--host", host, "--port", str(port),
            "--config", config_json(answers, delays)]


def start_in(ns, answers, delays=None, host="127.0.0.1", port=53, timeout=10):
    """Start a server inside ``ns`` (a tests.nsutil.Netns, which stops it on
    close) and wait for ``ready``; returns the Popen."""
    p = ns.popen(*serve_argv(answers, delays, host, port), stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r, _, _ = select.select([p.stdout], [], [], timeout)
    line = p.stdout.readline() if r else ""
    if not line.startswith("ready"):
        p.kill()
        raise RuntimeError("dns server did not start: %r %s" % (line, p.stderr.read()))
    return p


class NetnsEtc:
    """``/etc/netns/<name>/`` files that ``ip netns exec`` bind-mounts over
    /etc inside: resolv.conf naming 127.0.0.1, a hosts file with only
    localhost, files+dns nsswitch.  Removed on exit (and /etc/netns too if
    this made it and it is empty)."""

    def __init__(self, name, resolv=RESOLV_CONF, hosts=HOSTS, nsswitch=NSSWITCH,
                 root="/etc/netns"):
        self.root = root
        self.dir = os.path.join(root, name)
        self.files = {"resolv.conf": resolv, "hosts": hosts, "nsswitch.conf": nsswitch}
        self._made_root = False

    def __enter__(self):
        if not os.path.isdir(self.root):
            os.makedirs(self.root, exist_ok=True)
            self._made_root = True
        os.mkdir(self.dir)
        try:
            for fname, text in self.files.items():
                if text is not None:
                    with open(os.path.join(self.dir, fname), "w") as f:
                        f.write(text)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for fname in self.files:
            try:
                os.unlink(os.path.join(self.dir, fname))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.dir)
        except FileNotFoundError:
            pass
        if self._made_root:
            try:
                os.rmdir(self.root)
            except OSError:
                pass                # another test's directory is in it


def _main(argv):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=53)
    sp.add_argument("--config", default="{}", help='{"answers": {...}, "delays": {...}}')
    args = ap.parse_args(argv)
    conf = json.loads(args.config)
    srv = DnsServer(conf.get("answers", {}), conf.get("delays", {}), args.host, args.port)
    srv.bind()

    def until_eof():
        try:
            while sys.stdin.read(4096):
                pass
        except (OSError, ValueError):
            pass
        srv._closed.set()

    threading.Thread(target=until_eof, daemon=True).start()
    print("ready %d" % srv.port, flush=True)
    srv.serve_forever()
    srv._sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

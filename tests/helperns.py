"""A namespace with a conntrack helper at work: an FTP control connection
(nf_conntrack_ftp, assigned by an nftables ``ct helper`` rule, labelled 5
and 70) and the RELATED data connection its PASV reply announced.  Used by
the kernel tests and ``record_fixtures.py``; no pytest here."""

import subprocess
import sys

from tests.nsutil import RULESET

HELPER_RULES = """\
table inet flowtop_helper {
    ct helper ftp-std { type "ftp" protocol tcp; }
    chain out {
        type filter hook output priority 10; policy accept;
        tcp dport 21 ct helper set "ftp-std"
        tcp dport 21 ct label set 5
        tcp dport 21 ct label set 70
    }
}
"""
RULES = RULESET + HELPER_RULES

# Runs inside: a server on port 21 answers PASV with the port of a data
# listener (what nf_conntrack_ftp parses into an expectation), the client
# connects there (the RELATED flow), 1000 bytes come back; stays open until
# stdin closes.  Prints the data port.
FTP = r"""
import socket, sys, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 21)); srv.listen(2)
data = socket.socket(); data.bind(("127.0.0.1", 0)); data.listen(2)
dport = data.getsockname()[1]
cli = socket.create_connection(("127.0.0.1", 21)); conn, _ = srv.accept()
conn.sendall(b"220 hi\r\n"); cli.recv(100)
cli.sendall(b"PASV\r\n"); conn.recv(100)
conn.sendall(b"227 Entering Passive Mode (127,0,0,1,%d,%d)\r\n" % (dport >> 8, dport & 255))
cli.recv(200)
time.sleep(0.1)
dc = socket.create_connection(("127.0.0.1", dport)); dconn, _ = data.accept()
dconn.sendall(b"z" * 1000); got = 0
while got < 1000: got += len(dc.recv(2000))
print(dport, cli.getsockname()[1], flush=True)
sys.stdin.read()
"""


def ftp_session(ns):
    """Start the FTP exchange in ``ns``: (data port, control client port)."""
    p = ns.popen(sys.executable, "-c", FTP, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 text=True)
    line = p.stdout.readline()
    if not line:
        raise RuntimeError("ftp exchange failed")
    data, control = map(int, line.split())
    return data, control


PING_UDP = ("import socket, sys\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto("
            "b'x', ('127.0.0.1', int(sys.argv[1])))")


def wait_logging(ns, proc, timeout=20.0):
    """Block until ``flowtop --events`` (``proc``, stdout a text pipe) logs:
    a UDP datagram to a new port each 0.3 s until a line names that port.
    Start-up takes seconds on a loaded machine; the lines read are returned."""
    import select
    import time
    seen = []
    deadline = time.monotonic() + timeout
    port = 40000
    while time.monotonic() < deadline:
        port += 1
        ns.run(sys.executable, "-c", PING_UDP, str(port))
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("flowtop --events ended: %s" % proc.stderr.read())
            seen.append(line)
            if str(port) in line:
                return seen
    raise RuntimeError("flowtop --events logged nothing in %gs" % timeout)

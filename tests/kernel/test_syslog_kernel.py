"""``flowtop --syslog``: flow start and end events as RFC 5424 messages
whose text is the flow's JSON record, received over UDP, TCP (octet
counting) and a unix datagram socket inside a test namespace."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.exportutil import wait_for
from tests.nsutil import REPO, Netns, kernel_ready

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

HEADER = re.compile(r"^<30>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ flowtop (\d+) "
                    r"(flow-start|flow-end) - (\{.*\})$")

# Receives syslog messages (udp, tcp with octet counting, unix datagrams) into a file, one a line.
RECEIVER = r"""
import os, socket, sys, threading
kind, where, out = sys.argv[1], sys.argv[2], open(sys.argv[3], "a")
lock = threading.Lock()
def keep(msg):
    with lock:
        out.write(msg.decode() + "\n"); out.flush()
if kind == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(where)))
elif kind == "unix":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(where)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.bind(("127.0.0.1", int(where)))
    s.listen(1)
print("ready", flush=True)
if kind == "tcp":
    c, _ = s.accept(); buf = b""
    while True:
        d = c.recv(65536)
        if not d: break
        buf += d
        while b" " in buf:
            n, _, rest = buf.partition(b" ")
            if len(rest) < int(n): break
            keep(rest[:int(n)]); buf = rest[int(n):]
else:
    while True:
        keep(s.recv(65536))
"""

UDP_FLOW = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.sendto(b'hello', ('127.0.0.1', 5999))")


@pytest.mark.parametrize("kind", ["udp", "tcp", "unix"])
def test_flow_start_and_end_arrive_as_rfc5424_json(kind, tmp_path):
    out = tmp_path / "messages"
    out.write_text("")
    where = str(tmp_path / "log.sock") if kind == "unix" else "19989"
    target = "unix:" + where if kind == "unix" else "%s://127.0.0.1:%s" % (kind, where)
    with Netns("i14y") as ns:
        rx = ns.popen(sys.executable, "-c", RECEIVER, kind, where, str(out),
                      stdout=subprocess.PIPE, text=True)
        assert rx.stdout.readline().strip() == "ready"
        flowtop = ns.popen(sys.executable, "-m", "flowtop", "--syslog", target, "-n", "-G",
                           env=dict(os.environ, PYTHONPATH=REPO),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        ns.run(sys.executable, "-c", UDP_FLOW)
        assert wait_for(lambda: "flow-start" in out.read_text() and "5999" in out.read_text())
        ns.run("conntrack", "-D", "-p", "udp", "--orig-port-dst", "5999")
        assert wait_for(lambda: "flow-end" in out.read_text())
        flowtop.terminate()
        _, err = flowtop.communicate(timeout=20)
    msgs = []
    for line in out.read_text().splitlines():
        m = HEADER.match(line)
        assert m, line
        msgs.append((m.group(2), json.loads(m.group(3))))
    mine = [(kind_, rec) for kind_, rec in msgs if rec.get("dport") == 5999]
    assert [k for k, _ in mine] == ["flow-start", "flow-end"], msgs
    start, end = mine[0][1], mine[1][1]
    assert (start["event"], end["event"]) == ("start", "end")
    assert start["proto"] == "udp" and start["src"] == "127.0.0.1"
    assert end["packets_orig"] == 1 and end["bytes_orig"] == 33       # 5 bytes + 28 of headers

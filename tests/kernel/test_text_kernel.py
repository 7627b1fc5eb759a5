"""Wide characters on the live screen (text.width/fit/cut): processes named
in CJK and emoji hold connections in an ``ftest-i11a*`` namespace, and
every column to the right of their names stays under its title in tmux."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from flowtop.text import skip, width  # noqa: E402
from tests import enrichutil as eu  # noqa: E402
from tests.enrichutil import AF_INET  # noqa: E402
from tests.nsutil import Netns, kernel_ready  # noqa: E402

_READY, _WHY = kernel_ready("tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

# argv: comm, port.  Names itself (/proc/self/comm), connects, prints
# {"pid", "port"}, holds the connection until stdin closes.
NAMED_CLIENT = r"""
import json, os, socket, sys
with open("/proc/self/comm", "w") as f:
    f.write(sys.argv[1])
c = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10)
c.sendall(b"x")
c.recv(64)
print(json.dumps({"pid": os.getpid(), "port": c.getsockname()[1]}), flush=True)
sys.stdin.read()
"""
NAMES = ("東京😀", "서울서울", "ﾃｽﾄ全角")      # wide, wide, half- and fullwidth mixed


def test_wide_process_names_keep_every_column_under_its_title(tmp_path):
    with Netns("i11awide") as ns:
        eu.server(ns, "tcp", AF_INET, "127.0.0.1", 5001)
        clients = [eu.start(ns, NAMED_CLIENT, name, 5001) for name in NAMES]
        with eu.LiveView(ns, tmp_path / "pane", "i11awide", "--loopback", "-n", "-G",
                         width=120, height=30) as lv:
            def ours(ls):
                return [ln for ln in ls if any(n in ln for n in NAMES)]
            lines = lv.wait(lambda ls: len(ours(ls)) >= len(NAMES), 15, "the named processes")
            head = next(ln for ln in lines if ln.startswith("PROCESS"))
            for ln in ours(lines):
                assert width(ln) <= 120, ln                          # nothing runs on
                for title in ("PROTO", "STATE", "SERVICE", "DESTINATION"):
                    col = head.index(title)                          # ASCII titles
                    assert skip(ln, col - 1)[:1] == " ", (title, ln)
                assert skip(ln, head.index("PROTO")).startswith("tcp "), ln
                assert skip(ln, head.index("DESTINATION")).startswith("127.0.0.1:5001"), ln
            for c, name in zip(clients, NAMES):
                assert any(("%s/%d" % (name, c["pid"]))[:6] in ln for ln in ours(lines)), name
            eu.assert_screen_clean(lv, "the live view")
            assert lv.quit() == 0, lv.stderr()

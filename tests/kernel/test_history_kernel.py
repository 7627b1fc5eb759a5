"""Rate history in the live view against real traffic: a steady UDP stream
in a namespace; H shows the 2/10/40 s averages near its real rate, the
details pane a sparkline, in Unicode or in plain characters."""

import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from flowtop.history import SPARK_PLAIN, SPARK_UNICODE  # noqa: E402
from tests.nsutil import Netns, kernel_ready  # noqa: E402
from tests.tmuxutil import Tmux, pane_command  # noqa: E402

_READY, _WHY = kernel_ready("tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

RATE = 20000          # bytes/s of payload the sender aims at (orig direction)
SENDER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", 5999))
t0 = time.monotonic(); n = 0
while True:
    s.sendto(b"z" * 972, ("127.0.0.1", 5999)); n += 1       # 1000 bytes a packet with headers
    r.recv(2048)
    time.sleep(max(0.0, t0 + n * 1000.0 / %d - time.monotonic()))
""" % RATE


def parse_rate(text):
    units = {"B/s": 1, "kB/s": 1e3, "MB/s": 1e6}
    for u in sorted(units, key=len, reverse=True):
        if text.endswith(u):
            return float(text[:-len(u)]) * units[u]
    raise ValueError(text)


@pytest.mark.parametrize("lang", ["C.UTF-8", "C"])
def test_averages_follow_a_steady_stream_and_the_details_draw_its_history(tmp_path, lang):
    with Netns("i15bhist") as ns:
        ns.popen(sys.executable, "-c", SENDER, stdout=subprocess.DEVNULL)
        tm = Tmux("i15b-hist")
        try:
            # PEP 538 would turn a plain C locale into C.UTF-8: keep it ASCII
            argv = ns.argv("env", "TERM=xterm-256color", "LANG=" + lang, "LC_ALL=" + lang,
                           "PYTHONCOERCECLOCALE=0", "PYTHONUTF8=0",
                           "PYTHONPATH=" + REPO, sys.executable, "-m", "flowtop",
                           "--no-sysctl", "-n", "--loopback", "-U", "-t", "0.5",
                           "--rc", str(tmp_path / "rc"))
            tm.start(pane_command(argv, str(tmp_path)), 200, 30, str(tmp_path))
            tm.send("H")
            time.sleep(6)                    # 12 samples: the 2 s average has settled

            def stream(ls):
                # the last columns, each one word: ... AVG2S AVG10S AVG40S PEAK AGE
                titles = [x.split() for x in ls if x.startswith("PROCESS") or
                          x.startswith("PROTO")]
                row = [x.split() for x in ls if "127.0.0.1:5999" in x]
                if not titles or not row or titles[0][-5:] != ["AVG2S", "AVG10S", "AVG40S",
                                                             "PEAK", "AGE"]:
                    return None
                cells = dict(zip(titles[0][-5:], row[0][-5:]))
                return cells if cells["AVG2S"] != "-" else None
            lines = tm.wait_for(stream, 10, "the stream's averages")
            r = stream(lines)
            avg2, avg10, peak = (parse_rate(r[k]) for k in ("AVG2S", "AVG10S", "PEAK"))
            # the original direction only: the receiving socket never answers
            assert 0.6 * RATE < avg2 < 1.5 * RATE, r
            assert avg10 <= peak and avg2 <= peak * 1.01, r
            assert parse_rate(r["AVG40S"]) < avg10, r     # 40 s window, ~7 s of traffic
            marks = SPARK_UNICODE if lang == "C.UTF-8" else SPARK_PLAIN
            spark = lines[0].rstrip().rsplit("  ", 1)[1]                   # header sparkline
            assert len(spark) >= 12 and set(spark) <= set(marks) and marks[-1] in spark, lines[0]
            # select the stream's row, open its details
            for _ in range(20):
                ls = tm.capture()
                sel = [x for x in ls if "127.0.0.1:5999" in x]
                if sel:
                    break
            tm.send("Enter")
            lines = tm.wait_for(lambda ls: any(" history " in x for x in ls),
                                5, "the details pane's history line")
            hist = [x for x in lines if " history " in x][0]
            spark = hist.split(" history ", 1)[1].strip().split()[0]
            assert len(spark) == 30 and set(spark) <= set(marks), repr(hist)
            assert marks[-1] in spark and "2s " in hist and "peak " in hist
            if lang == "C":
                assert all(ord(c) < 128 for c in hist)
            # per group: the Processes view's sender row gets averages too
            tm.send("Escape")
            tm.send("Tab")

            def group(ls):
                titles = [x.split() for x in ls if x.startswith("PROCESS ")]
                row = [x.split() for x in ls if x.startswith("python3/")]
                if not titles or not row or titles[0][-4:] != ["AVG2S", "AVG10S", "AVG40S",
                                                             "PEAK"]:
                    return None
                cells = dict(zip(titles[0][-4:], row[0][-4:]))
                # settled: 2 s of samples since the view was first shown
                ok = cells["AVG2S"] != "-" and parse_rate(cells["AVG2S"]) > 0.6 * RATE
                return cells if ok else None
            cells = group(tm.wait_for(group, 10, "the sender's group averages"))
            assert 0.6 * RATE < parse_rate(cells["AVG2S"]) < 1.5 * RATE, cells
        finally:
            tm.kill()

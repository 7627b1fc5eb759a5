"""Ctrl-C at any moment of a real flowtop's life in a namespace (issue 11.7): exit 130,
no traceback, sysctls restored. SIGINT lands during start-up (imports), while running,
and many times while exiting."""

import os
import select
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.nsutil import Netns, kernel_ready  # noqa: E402
from tests.tmuxutil import Tmux, pane_command, read_exit  # noqa: E402

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

ACCT = "net.netfilter.nf_conntrack_acct"
TIMESTAMP = "net.netfilter.nf_conntrack_timestamp"
OFF = {ACCT: 0, TIMESTAMP: 0}
ARGS = ("-c", "-G", "--no-iface", "--no-process", "-t", "0.1")
TIMEOUT = 20


def spawn(ns, *pyflags, args=ARGS):
    return subprocess.Popen(ns.argv(sys.executable, *pyflags, "-m", "flowtop", *args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=REPO, PYTHONDONTWRITEBYTECODE="1"))


def finish(p):
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail("flowtop did not exit after SIGINT")
    return p.returncode, err.decode("utf-8", "replace")


def readable(stream, timeout):
    return select.select([stream], [], [], timeout)[0]


def before_flowtop(rc, err):
    """A SIGINT that landed before flowtop's first line could run: before the
    interpreter installs its handler (the kernel ends the process by the signal;
    the shell shows 130) or inside Python's own start-up (``site``, or the
    standard streams' set-up before it: seen at 0.01 s on a loaded machine),
    which says so as a fatal error. Nothing of flowtop's can change either."""
    return ((rc == -signal.SIGINT and err == "")
            or (rc == 1 and err.startswith(("Fatal Python error: init_import_site",
                                            "Fatal Python error: init_sys_streams"))))


def assert_quiet_130(ns, rc, err, may_precede_flowtop=False):
    if not (may_precede_flowtop and before_flowtop(rc, err)):
        assert rc == 130, (rc, err)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert (ns.sysctl(ACCT), ns.sysctl(TIMESTAMP)) == ("0", "0")


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4, 0.8])
def test_sigint_after_a_delay_exits_130_quietly(delay):
    with Netns("i11bint", sysctls=OFF) as ns:
        p = spawn(ns)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        rc, err = finish(p)
        assert_quiet_130(ns, rc, err, may_precede_flowtop=True)


@pytest.mark.parametrize("module", ["flowtop.cli", "flowtop.views.columns", "flowtop.main",
                                    "flowtop.sysctl", "flowtop.collector"])
def test_sigint_during_the_imports_exits_130_quietly(module):
    # -X importtime reports each import as it completes: SIGINT right after ``module``
    # lands in the imports that follow it (or, for the last, in the first steps).
    with Netns("i11bimp", sysctls=OFF) as ns:
        p = spawn(ns, "-X", "importtime")
        seen = b""
        while not seen.rstrip().endswith(b" " + module.encode()):
            assert readable(p.stderr, TIMEOUT), seen[-2000:]
            line = p.stderr.readline()
            assert line, seen[-2000:]
            seen = line
        p.send_signal(signal.SIGINT)
        rc, err = finish(p)
        err = "\n".join(l for l in err.splitlines() if not l.startswith("import time:"))
        assert_quiet_130(ns, rc, err)


@pytest.mark.parametrize("args", [ARGS, ("-c", "-n") + ARGS, ("--json",) + ARGS[1:]],
                         ids=["text-frames-dns", "text-frames", "json"])
def test_sigint_pressed_many_times_while_exiting_exits_130_quietly(args):
    with Netns("i11bmany", sysctls=OFF) as ns:
        ns.run("conntrack", "-I", "-p", "udp", "-s", "127.0.0.1", "-d", "127.0.0.1",
               "--sport", "4000", "--dport", "5353", "-t", "300")
        p = spawn(ns, args=args + ("--loopback",))
        assert readable(p.stdout, TIMEOUT) and p.stdout.readline(), "no output"
        assert (ns.sysctl(ACCT), ns.sysctl(TIMESTAMP)) == ("1", "1")
        deadline = time.monotonic() + TIMEOUT
        while p.poll() is None and time.monotonic() < deadline:
            try:
                p.send_signal(signal.SIGINT)
            except ProcessLookupError:
                break
            time.sleep(0.001)
        rc, err = finish(p)
        assert_quiet_130(ns, rc, err)


def test_ctrl_c_pressed_many_times_in_the_full_screen_view_exits_130_with_the_terminal_sane(
        tmp_path):
    wd = str(tmp_path)
    with Netns("i11bscr", sysctls=OFF) as ns, Tmux("i11bscr") as tm:
        argv = ns.argv("env", "TERM=xterm-256color", "PYTHONPATH=" + REPO, sys.executable,
                       "-m", "flowtop", "-G", "--no-iface", "--no-process", "-t", "0.1")
        # The pane's shell and its stty get every ^C too: until flowtop ends the shell
        # traps it (an ignore would be inherited by flowtop), then ignores it.
        line = pane_command(argv, wd).replace("rc=$?;", "rc=$?; trap '' INT;", 1)
        tm.start("trap : INT; " + line, 120, 30, wd)
        # (not the header's "acct on": under load its line also says how rates are paced,
        # and the note is cut at 120 columns)
        tm.wait_for(lambda ls: any("q quit" in x for x in ls) and ns.sysctl(ACCT) == "1",
                    TIMEOUT, "the full-screen view, acct on")
        for _ in range(500):                # until the pane is gone with flowtop
            if tm.tmux("send-keys", "-t", "t", "C-c", check=False).returncode:
                break
        status, stty_after = read_exit(wd, TIMEOUT)
        with open(os.path.join(wd, "stderr")) as f:
            err = f.read()
        assert_quiet_130(ns, status, err)
        with open(os.path.join(wd, "stty.before")) as f:
            assert stty_after == f.read()

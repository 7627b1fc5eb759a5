"""SysctlGuard against the real /proc/sys, inside a throwaway network namespace.

The conntrack sysctls are per network namespace, so each test gets its own namespace and
the host's values are never touched (checked at the end of each test).
"""

import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest


pytestmark = pytest.mark.kernel

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACCT = "net.netfilter.nf_conntrack_acct"
TIMESTAMP = "net.netfilter.nf_conntrack_timestamp"
TIMEOUT = 15

# Runs inside the namespace: argv = repo root, mode. Prints READY with what it sees, waits
# for a line on stdin (or a signal), then prints AFTER with the values once the guard is done.
CHILD = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from flowtop.sysctl import SysctlGuard, Terminated, exit_status_for

mode = sys.argv[2]
# Whatever the test runner inherited (nohup, a background job), start from the defaults.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGHUP, signal.SIG_DFL)

def cur(name):
    with open("/proc/sys/" + name.replace(".", "/")) as f:
        return f.read().strip()

def show(tag, *extra):
    print(tag, cur("net.netfilter.nf_conntrack_acct"),
          cur("net.netfilter.nf_conntrack_timestamp"), *extra, flush=True)

if mode == "nobody":
    os.setgid(65534)
    os.setuid(65534)
try:
    try:
        with SysctlGuard(enabled=(mode != "readonly")) as g:
            show("READY", g.acct, g.timestamp, os.getpid())
            sys.stdin.readline()
            if mode == "raise":
                raise RuntimeError("boom")
    finally:
        show("AFTER")
except (Terminated, KeyboardInterrupt) as e:
    print("CAUGHT", type(e).__name__, flush=True)
    sys.exit(exit_status_for(e))
"""


def run(*argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=check)


def ns_get(ns, name):
    path = "/proc/sys/" + name.replace(".", "/")
    return run("ip", "netns", "exec", ns, "cat", path).stdout.strip()


def ns_set(ns, name, value):
    run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{name}={value}")


def host_values():
    out = {}
    for name in (ACCT, TIMESTAMP):
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            out[name] = f.read().strip()
    return out


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in ("unshare", "ip", "sysctl"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    name = "ftest-sysctl-" + secrets.token_hex(4)
    added = run("ip", "netns", "add", name, check=False)
    if added.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {added.stderr.strip()}")
    try:
        probe = run("ip", "netns", "exec", name, "test", "-e",
                    "/proc/sys/" + ACCT.replace(".", "/"), check=False)
        if probe.returncode != 0:
            pytest.skip("conntrack sysctls not present (nf_conntrack not loaded)")
        host_before = host_values()
        yield name
        assert host_values() == host_before, "host sysctls changed"
    finally:
        run("ip", "netns", "del", name, check=False)


class Child:
    """The guarded python process inside the namespace (ip netns exec execs, same pid)."""

    def __init__(self, ns, mode):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", CHILD, REPO_ROOT, mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def ready(self):
        """Return the READY line's fields: acct, timestamp, guard.acct, guard.timestamp, pid."""
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("READY "):
            self.kill()
            pytest.fail(f"child not ready: {line!r} {self.proc.stderr.read()!r}")
        return line.split()[1:]

    def finish(self):
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("child did not exit")
        return self.proc.returncode, out, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def finish_by(child, how):
    if how == "exit" or how == "raise":
        child.proc.stdin.write("go\n")
        child.proc.stdin.flush()
    else:
        os.kill(child.proc.pid, how)
    return child.finish()


CASES = [
    pytest.param("exit", "exit", 0, None, id="normal-exit"),
    pytest.param("raise", "raise", 1, None, id="exception"),
    pytest.param("wait", signal.SIGINT, 130, "KeyboardInterrupt", id="SIGINT"),
    pytest.param("wait", signal.SIGTERM, 143, "Terminated", id="SIGTERM"),
    pytest.param("wait", signal.SIGHUP, 129, "Terminated", id="SIGHUP"),
]


@pytest.mark.parametrize("mode, how, status, caught", CASES)
def test_enabled_while_running_and_restored_after(netns, mode, how, status, caught):
    ns_set(netns, ACCT, 0)
    ns_set(netns, TIMESTAMP, 0)
    child = Child(netns, mode)
    try:
        assert child.ready()[:4] == ["1", "1", "True", "True"]
        assert ns_get(netns, ACCT) == "1"
        assert ns_get(netns, TIMESTAMP) == "1"
        rc, out, err = finish_by(child, how)
    finally:
        child.kill()
    assert rc == status, err
    assert "AFTER 0 0" in out.splitlines()
    if caught:
        assert f"CAUGHT {caught}" in out.splitlines()
    if mode == "raise":
        assert "RuntimeError: boom" in err
    assert ns_get(netns, ACCT) == "0"
    assert ns_get(netns, TIMESTAMP) == "0"


@pytest.mark.parametrize("how", ["exit", signal.SIGTERM], ids=["normal-exit", "SIGTERM"])
def test_already_on_is_left_on(netns, how):
    ns_set(netns, ACCT, 1)
    ns_set(netns, TIMESTAMP, 0)
    child = Child(netns, "exit" if how == "exit" else "wait")
    try:
        assert child.ready()[:4] == ["1", "1", "True", "True"]
        rc, out, err = finish_by(child, how)
    finally:
        child.kill()
    assert rc == (0 if how == "exit" else 143), err
    assert ns_get(netns, ACCT) == "1"
    assert ns_get(netns, TIMESTAMP) == "0"


def test_disabled_never_writes(netns):
    ns_set(netns, ACCT, 0)
    ns_set(netns, TIMESTAMP, 1)
    child = Child(netns, "readonly")
    try:
        assert child.ready()[:4] == ["0", "1", "False", "True"]
        rc, out, err = finish_by(child, "exit")
    finally:
        child.kill()
    assert rc == 0 and err == ""
    assert (ns_get(netns, ACCT), ns_get(netns, TIMESTAMP)) == ("0", "1")


def test_unprivileged_warns_and_reports_off(netns):
    ns_set(netns, ACCT, 0)
    ns_set(netns, TIMESTAMP, 0)
    child = Child(netns, "nobody")
    try:
        assert child.ready()[:4] == ["0", "0", "False", "False"]
        rc, out, err = finish_by(child, "exit")
    finally:
        child.kill()
    assert rc == 0, err
    assert err.splitlines() == [
        f"flowtop: cannot enable {ACCT} (Permission denied): "
        "byte/packet counters will be shown as absent",
        f"flowtop: cannot enable {TIMESTAMP} (Permission denied): "
        "flow durations will be shown as absent",
    ]
    assert (ns_get(netns, ACCT), ns_get(netns, TIMESTAMP)) == ("0", "0")


# -- two real flowtops in one namespace (issue 11.2) ------------------------------------

class Flowtop:
    """``python3 -m flowtop -c`` inside ``ns``, text frames on a pipe."""

    def __init__(self, ns):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "flowtop", "-c", "-n", "-G",
             "--no-iface", "--no-process", "-t", "0.2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
            env=dict(os.environ, PYTHONPATH=REPO_ROOT))

    def first_frame(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        if " flows " not in line and not line.startswith("0 flows"):
            self.proc.kill()
            pytest.fail("no frame: %r %r" % (line, self.proc.stderr.read()))

    def stop(self, sig):
        os.kill(self.proc.pid, sig)
        try:
            _out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("flowtop did not exit")
        return self.proc.returncode, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def shared_netns(netns):
    """The namespace, and its hand-over directory removed afterwards."""
    ino = run("ip", "netns", "exec", netns, "stat", "-L", "-c", "%i", "/proc/self/ns/net")
    where = "/run/flowtop/net-%s" % ino.stdout.strip()
    yield netns
    shutil.rmtree(where, ignore_errors=True)


def both(ns):
    return ns_get(ns, ACCT), ns_get(ns, TIMESTAMP)


@pytest.fixture
def flowtops(shared_netns):
    """Start flowtops in a namespace whose switches are both off; all killed at the end."""
    ns_set(shared_netns, ACCT, 0)
    ns_set(shared_netns, TIMESTAMP, 0)
    started = []

    def start():
        f = Flowtop(shared_netns)
        started.append(f)
        f.first_frame()
        return f

    yield start
    for f in started:
        f.kill()


@pytest.mark.parametrize("order", ["first-started-stops-first", "last-started-stops-first"])
def test_two_flowtops_in_one_namespace_keep_accounting_on_until_both_stop(
        shared_netns, flowtops, order):
    a = flowtops()
    assert both(shared_netns) == ("1", "1")
    b = flowtops()
    first, last = (a, b) if order.startswith("first") else (b, a)
    rc, err = first.stop(signal.SIGINT)
    assert rc == 130 and "Traceback" not in err, err
    assert both(shared_netns) == ("1", "1")
    rc, err = last.stop(signal.SIGTERM)
    assert rc == 143 and "Traceback" not in err, err
    assert both(shared_netns) == ("0", "0")


def test_a_flowtop_killed_by_sigkill_is_restored_after_by_the_next_one(shared_netns, flowtops):
    flowtops().stop(signal.SIGKILL)
    assert both(shared_netns) == ("1", "1")     # nothing runs on SIGKILL
    rc, err = flowtops().stop(signal.SIGTERM)
    assert rc == 143, err
    assert both(shared_netns) == ("0", "0")


def test_text_frames_say_what_the_kernel_has_now_not_at_start(shared_netns):
    ns = shared_netns
    ns_set(ns, ACCT, 1)
    ns_set(ns, TIMESTAMP, 1)
    a = Flowtop(ns)
    try:
        a.first_frame()
        ns_set(ns, ACCT, 0)          # another program switches accounting off
        seen = ""
        deadline = time.monotonic() + TIMEOUT
        while "accounting is off" not in seen:
            ready, _, _ = select.select([a.proc.stdout], [], [], TIMEOUT)
            line = a.proc.stdout.readline() if ready else ""
            assert line and time.monotonic() < deadline, \
                "no frame said accounting is off; last: %r" % seen
            seen = line
        rc, err = a.stop(signal.SIGTERM)
        assert rc == 143, err
        # flowtop changed nothing, so it puts nothing back
        assert both(ns) == ("0", "1")
    finally:
        a.kill()

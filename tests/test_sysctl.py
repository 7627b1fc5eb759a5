"""SysctlGuard on a fake /proc/sys under tmp_path: no root needed, and root-proof.

Files that must not be writable are sealed memfds reached through /proc/<pid>/fd/N: the
kernel refuses writes to them with EPERM even for root, unlike chmod 0o444.
"""

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from flowtop.sysctl import (
    ACCT,
    TIMESTAMP,
    SysctlGuard,
    Terminated,
    exit_status_for,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACCT_REL = "net/netfilter/nf_conntrack_acct"
TS_REL = "net/netfilter/nf_conntrack_timestamp"


def put(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def fake(tmp_path):
    """A sysctl root with both switches off, as on a fresh host."""
    put(tmp_path, ACCT_REL, "0\n")
    put(tmp_path, TS_REL, "0\n")
    return tmp_path


@pytest.fixture
def warned():
    return []


def guard(root, warned, **kw):
    return SysctlGuard(root=str(root), warn=warned.append, **kw)


def read(root, rel):
    return (root / rel).read_text()


@pytest.fixture
def sealed():
    """Factory: put a read-only-for-everyone file with `content` at root/rel."""
    if not (hasattr(os, "memfd_create") and hasattr(fcntl, "F_ADD_SEALS")):
        pytest.skip("needs memfd_create and file sealing (Linux >= 3.17)")
    fds = []

    def make(root, rel, content):
        fd = os.memfd_create("flowtop-test", os.MFD_ALLOW_SEALING)
        fds.append(fd)
        os.write(fd, content)
        seals = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
        link = root / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(f"/proc/{os.getpid()}/fd/{fd}")
        return link

    yield make
    for fd in fds:
        os.close(fd)


@pytest.fixture
def handlers():
    """Snapshot SIGTERM/SIGHUP handlers and put them back whatever the test did."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    yield saved
    for s, h in saved.items():
        signal.signal(s, h)


def wait_for_signal():
    # The handler runs at the next bytecode boundary; give it a few chances.
    for _ in range(200):
        time.sleep(0.005)
    pytest.fail("signal was not delivered")


# -- enable and restore ------------------------------------------------------------------


def test_enables_inside_and_restores_after_normal_exit(fake, warned):
    with guard(fake, warned) as g:
        assert read(fake, ACCT_REL).strip() == "1"
        assert read(fake, TS_REL).strip() == "1"
        assert (g.acct, g.timestamp) == (True, True)
    assert read(fake, ACCT_REL) == "0\n"
    assert read(fake, TS_REL) == "0\n"
    assert (g.acct, g.timestamp) == (False, False)
    assert warned == []


def test_restores_exact_previous_bytes(tmp_path, warned):
    put(tmp_path, ACCT_REL, "0")
    put(tmp_path, TS_REL, "  0\n")
    with guard(tmp_path, warned):
        pass
    assert read(tmp_path, ACCT_REL) == "0"
    assert read(tmp_path, TS_REL) == "  0\n"


def test_restores_after_exception(fake, warned):
    with pytest.raises(RuntimeError, match="boom"):
        with guard(fake, warned):
            assert read(fake, ACCT_REL).strip() == "1"
            raise RuntimeError("boom")
    assert read(fake, ACCT_REL) == "0\n"
    assert read(fake, TS_REL) == "0\n"


def test_restores_after_keyboard_interrupt(fake, warned):
    with pytest.raises(KeyboardInterrupt):
        with guard(fake, warned):
            raise KeyboardInterrupt
    assert read(fake, ACCT_REL) == "0\n"
    assert read(fake, TS_REL) == "0\n"


def test_already_on_is_never_written(fake, warned, sealed):
    # Sealed: any write attempt would fail and show up as a warning.
    sealed(fake, ACCT_REL, b"1\n")
    ts = put(fake, TS_REL, "1\n")
    os.utime(ts, ns=(1_000_000_000, 1_000_000_000))
    with guard(fake, warned) as g:
        assert (g.acct, g.timestamp) == (True, True)
    assert warned == []
    assert (g.acct, g.timestamp) == (True, True)
    assert read(fake, ACCT_REL) == "1\n"
    assert read(fake, TS_REL) == "1\n"
    assert os.stat(ts).st_mtime_ns == 1_000_000_000


def test_only_changed_names_are_restored(fake, warned):
    put(fake, ACCT_REL, "1\n")
    with guard(fake, warned):
        put(fake, ACCT_REL, "1\n")  # someone else's value; ours was already on
    assert read(fake, ACCT_REL) == "1\n"
    assert read(fake, TS_REL) == "0\n"


# -- failures become one warning, never an exception -----------------------------------


def test_unwritable_warns_once_and_reports_off(fake, warned, sealed):
    sealed(fake, ACCT_REL, b"0\n")
    with guard(fake, warned) as g:
        assert g.acct is False
        assert g.timestamp is True
    assert warned == [
        f"flowtop: cannot enable {ACCT} (Operation not permitted): "
        "byte/packet counters will be shown as absent"
    ]
    assert read(fake, ACCT_REL) == "0\n"
    assert read(fake, TS_REL) == "0\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_read_only_mode_as_user_warns_permission_denied(fake, warned):
    os.chmod(fake / TS_REL, 0o444)
    with guard(fake, warned) as g:
        assert g.timestamp is False
    assert warned == [
        f"flowtop: cannot enable {TIMESTAMP} (Permission denied): "
        "flow durations will be shown as absent"
    ]


def test_missing_files_warn_and_report_unknown(tmp_path, warned):
    with guard(tmp_path, warned) as g:
        assert (g.acct, g.timestamp) == (None, None)
    assert len(warned) == 2
    assert ACCT in warned[0] and "No such file or directory" in warned[0]
    assert "byte/packet counters will be shown as absent" in warned[0]
    assert TIMESTAMP in warned[1] and "flow durations will be shown as absent" in warned[1]
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_unreadable_warns_and_reports_unknown(fake, warned):
    (fake / ACCT_REL).unlink()
    (fake / ACCT_REL).mkdir()  # open() of a directory fails, also for root
    with guard(fake, warned) as g:
        assert g.acct is None
        assert g.timestamp is True
    assert len(warned) == 1
    assert warned[0].startswith(f"flowtop: cannot enable {ACCT} (Is a directory)")


def test_garbage_value_is_unknown_and_untouched(fake, warned):
    put(fake, ACCT_REL, "bogus\n")
    with guard(fake, warned) as g:
        assert g.acct is None
    assert len(warned) == 1 and "unexpected value 'bogus'" in warned[0]
    assert read(fake, ACCT_REL) == "bogus\n"


def test_default_warn_writes_one_line_to_stderr(tmp_path, capsys):
    with SysctlGuard(names=(ACCT,), root=str(tmp_path)):
        pass
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"flowtop: cannot enable {ACCT}")


def test_failed_restore_warns_and_does_not_raise(fake, warned):
    with guard(fake, warned):
        (fake / ACCT_REL).unlink()
        (fake / ACCT_REL).mkdir()
    assert warned == [f"flowtop: cannot restore {ACCT} to 0 (Is a directory)"]
    assert read(fake, TS_REL) == "0\n"


# -- enabled=False and restore() -------------------------------------------------------


def test_disabled_reads_but_never_writes(fake, warned, sealed):
    sealed(fake, ACCT_REL, b"0\n")  # a write attempt would warn
    ts = put(fake, TS_REL, "1\n")
    os.utime(ts, ns=(1_000_000_000, 1_000_000_000))
    with guard(fake, warned, enabled=False) as g:
        assert (g.acct, g.timestamp) == (False, True)
    assert warned == []
    assert read(fake, ACCT_REL) == "0\n"
    assert os.stat(ts).st_mtime_ns == 1_000_000_000


def test_disabled_missing_warns_cannot_read(tmp_path, warned):
    with guard(tmp_path, warned, names=(TIMESTAMP,), enabled=False) as g:
        assert g.timestamp is None and g.acct is None
    assert warned == [
        f"flowtop: cannot read {TIMESTAMP} (No such file or directory): "
        "flow durations will be shown as absent"
    ]


def test_restore_is_idempotent(fake, warned):
    with guard(fake, warned) as g:
        g.restore()
        assert read(fake, ACCT_REL) == "0\n"
        assert g.acct is False
        put(fake, ACCT_REL, "7\n")  # a second restore must not write again
        g.restore()
        assert read(fake, ACCT_REL) == "7\n"
    assert read(fake, ACCT_REL) == "7\n"
    g.restore()
    assert read(fake, ACCT_REL) == "7\n"


def test_guard_can_be_reused_after_exit(fake, warned):
    g = guard(fake, warned)
    for _ in range(2):
        with g:
            assert read(fake, ACCT_REL).strip() == "1"
        assert read(fake, ACCT_REL) == "0\n"
    with g:
        with pytest.raises(RuntimeError):
            g.__enter__()


def test_custom_names(tmp_path, warned):
    put(tmp_path, "net/netfilter/nf_conntrack_events", "0\n")
    with guard(tmp_path, warned, names=("net.netfilter.nf_conntrack_events",)) as g:
        assert g.state == {"net.netfilter.nf_conntrack_events": True}
        assert g.acct is None
    assert read(tmp_path, "net/netfilter/nf_conntrack_events") == "0\n"
    assert warned == []


# -- signals and atexit ----------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_raises_terminated_and_restores(fake, warned, handlers, signum):
    def before(s, f):
        raise AssertionError("previous handler must not run while guarded")

    signal.signal(signum, before)
    with pytest.raises(Terminated) as info:
        with guard(fake, warned):
            assert signal.getsignal(signum) is not before
            os.kill(os.getpid(), signum)
            wait_for_signal()
    assert info.value.signum == signum
    assert exit_status_for(info.value) == 128 + signum
    assert read(fake, ACCT_REL) == "0\n"
    assert read(fake, TS_REL) == "0\n"
    assert signal.getsignal(signum) is before
    other = signal.SIGHUP if signum == signal.SIGTERM else signal.SIGTERM
    assert signal.getsignal(other) == handlers[other]


@pytest.fixture
def sigint():
    # Python's own handler, whatever the suite was started with: a shell's background
    # job starts with SIGINT ignored, which the guard rightly leaves alone
    saved = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield signal.default_int_handler
    signal.signal(signal.SIGINT, saved)


def test_sigint_raises_keyboard_interrupt_once_and_later_ones_do_not_cut_the_unwinding(
        fake, warned, sigint):
    def before(s, f):
        raise AssertionError("previous handler must not run while guarded")

    signal.signal(signal.SIGINT, before)
    unwound = []
    with pytest.raises(KeyboardInterrupt):
        with guard(fake, warned):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                wait_for_signal()
            finally:
                for _ in range(3):            # Ctrl-C pressed again while unwinding
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.01)
                unwound.append(True)
    assert unwound == [True]
    assert (read(fake, ACCT_REL), read(fake, TS_REL)) == ("0\n", "0\n")
    assert signal.getsignal(signal.SIGINT) is before


def test_sigint_during_restore_is_deferred_then_raised_as_keyboard_interrupt(fake, sigint):
    def warn(line):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)

    with pytest.raises(KeyboardInterrupt):
        with SysctlGuard(root=str(fake), warn=warn):
            (fake / ACCT_REL).unlink()
            (fake / ACCT_REL).mkdir()
    assert read(fake, TS_REL) == "0\n"
    assert signal.getsignal(signal.SIGINT) is sigint


def test_ignored_sigint_stays_ignored(fake, warned, sigint):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with guard(fake, warned):
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_ignored_signal_stays_ignored(fake, warned, handlers):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with guard(fake, warned):
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    assert read(fake, ACCT_REL) == "0\n"


def test_signal_during_enter_still_restores(fake, handlers):
    # The timestamp file is missing; its warning arrives after acct was switched on.
    (fake / TS_REL).unlink()

    def warn(line):
        os.kill(os.getpid(), signal.SIGTERM)
        wait_for_signal()

    with pytest.raises(Terminated):
        with SysctlGuard(root=str(fake), warn=warn):
            pytest.fail("body must not run")
    assert read(fake, ACCT_REL) == "0\n"
    assert signal.getsignal(signal.SIGTERM) == handlers[signal.SIGTERM]


def test_signal_during_restore_is_deferred_until_restored(fake, handlers):
    # A failed acct restore warns; the warn callback is hit by SIGTERM. The timestamp must
    # still be restored and the handlers put back before Terminated comes out.
    def warn(line):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)

    with pytest.raises(Terminated) as info:
        with SysctlGuard(root=str(fake), warn=warn):
            (fake / ACCT_REL).unlink()
            (fake / ACCT_REL).mkdir()
    assert info.value.signum == signal.SIGTERM
    assert read(fake, TS_REL) == "0\n"
    assert signal.getsignal(signal.SIGTERM) == handlers[signal.SIGTERM]


def test_not_main_thread_skips_handlers(fake, warned, handlers):
    seen = {}

    def run():
        with guard(fake, warned) as g:
            seen["inside"] = (read(fake, ACCT_REL), g.acct, signal.getsignal(signal.SIGTERM))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen["inside"] == ("1\n", True, handlers[signal.SIGTERM])
    assert read(fake, ACCT_REL) == "0\n"


def run_child(code):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
    )


def test_atexit_restores_when_exit_never_runs(fake):
    proc = run_child(f"""
        from flowtop.sysctl import SysctlGuard
        g = SysctlGuard(root={str(fake)!r}, warn=print)
        g.__enter__()
        print(open({str(fake / ACCT_REL)!r}).read().strip())
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "1\n"
    assert read(fake, ACCT_REL) == "0\n"
    assert read(fake, TS_REL) == "0\n"


def test_exit_unregisters_atexit(fake):
    # After exit, a leftover atexit hook would write the poked value at interpreter exit.
    proc = run_child(f"""
        from flowtop.sysctl import SysctlGuard, ACCT
        with SysctlGuard(root={str(fake)!r}, warn=print) as g:
            pass
        g._changed[ACCT] = b"9\\n"
        """)
    assert proc.returncode == 0, proc.stderr
    assert read(fake, ACCT_REL) == "0\n"


# -- exit statuses ---------------------------------------------------------------------


def test_exit_status_for():
    assert exit_status_for(Terminated(signal.SIGTERM)) == 143
    assert exit_status_for(Terminated(signal.SIGHUP)) == 129
    assert exit_status_for(KeyboardInterrupt()) == 130
    assert exit_status_for(None) == 0
    assert exit_status_for(RuntimeError()) == 1
    assert str(Terminated(signal.SIGTERM)) == "terminated by SIGTERM"
    assert not isinstance(Terminated(15), Exception)


# -- hand-over between flowtops of one namespace (issue 11.2) ----------------------------

@pytest.fixture
def share(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    return d


def sharing(root, share, warned, identity=(7, 0)):
    return SysctlGuard(root=str(root), warn=warned.append, share=str(share),
                       identity=lambda: identity)


def both(root):
    return read(root, ACCT_REL), read(root, TS_REL)


@pytest.mark.parametrize("first_out", ["a", "b"], ids=["first-started-leaves-first",
                                                       "last-started-leaves-first"])
def test_accounting_stays_on_until_the_last_flowtop_of_the_namespace_leaves(
        fake, share, warned, first_out):
    a, b = sharing(fake, share, warned), sharing(fake, share, warned)
    a.__enter__()
    b.__enter__()
    assert both(fake) == ("1\n", "1\n")
    first, last = (a, b) if first_out == "a" else (b, a)
    first.__exit__(None, None, None)
    assert both(fake) == ("1\n", "1\n")
    last.__exit__(None, None, None)
    assert both(fake) == ("0\n", "0\n")
    assert warned == []


def test_a_killed_flowtops_values_are_restored_by_the_next_one_to_leave(fake, share, warned):
    a = sharing(fake, share, warned)
    a.__enter__()
    fd, _name = a._handover._marker          # SIGKILL: the kernel closes its fds, nothing else
    os.close(fd)
    a._handover._marker = None
    a._handover = None
    atexit_unregister(a)
    assert both(fake) == ("1\n", "1\n")
    with sharing(fake, share, warned):
        assert both(fake) == ("1\n", "1\n")
    assert both(fake) == ("0\n", "0\n")
    assert os.listdir(share / "flowtop") == []          # the last one out tidies up


def atexit_unregister(g):
    import atexit
    atexit.unregister(g.restore)
    g._restore_handlers()


def test_a_record_from_a_gone_namespace_with_the_same_inode_is_not_restored(fake, share, warned):
    a = sharing(fake, share, warned, identity=(7, 111))
    a.__enter__()
    os.close(a._handover._marker[0])          # killed; then its namespace goes away
    a._handover._marker, a._handover = None, None
    atexit_unregister(a)
    # A new namespace got inode 7 again (another cookie) and has accounting on by config.
    with sharing(fake, share, warned, identity=(7, 222)):
        pass
    assert both(fake) == ("1\n", "1\n")


def test_each_namespace_has_its_own_hand_over(tmp_path, share, warned):
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        put(root, ACCT_REL, "0\n")
        put(root, TS_REL, "0\n")
    a = sharing(one, share, warned, identity=(1, 0))
    b = sharing(two, share, warned, identity=(2, 0))
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert both(one) == ("0\n", "0\n") and both(two) == ("1\n", "1\n")
    b.__exit__(None, None, None)
    assert both(two) == ("0\n", "0\n")


def test_a_hand_over_directory_others_can_write_is_not_trusted(fake, share, warned):
    (share / "flowtop").mkdir(mode=0o777)
    os.chmod(share / "flowtop", 0o777)
    a, b = sharing(fake, share, warned), sharing(fake, share, warned)
    with a:
        with b:
            pass
        assert both(fake) == ("1\n", "1\n")   # b changed nothing, so restores nothing
    assert both(fake) == ("0\n", "0\n")       # a restores its own, as without a hand-over
    assert os.listdir(share / "flowtop") == []


def test_a_fake_root_never_shares_with_the_real_namespace(fake, warned):
    assert SysctlGuard(root=str(fake), warn=warned.append).share is None


def test_current_rereads_what_the_kernel_has_now(fake, share, warned):
    with sharing(fake, share, warned) as g:
        assert g.current() == {"acct": True, "timestamp": True}
        (fake / ACCT_REL).write_text("0\n")
        assert g.current() == {"acct": False, "timestamp": True}
        assert g.acct is False


def test_flowtops_starting_and_stopping_at_once_never_see_accounting_off(fake, share,
                                                                         monkeypatch):
    # /proc/sys reads a write whole; a plain file read between O_TRUNC and
    # write() is empty (a loaded run saw ''): the fake writes by rename
    def atomic(self, name, data):
        path = self.path(name)
        new = "%s.new-%d" % (path, threading.get_ident())   # one per writer: a shared
        with open(new, "wb") as f:                         # name was moved under another
            f.write(data)
        os.replace(new, path)
    monkeypatch.setattr(SysctlGuard, "_write", atomic)
    errors = []

    def one():
        for _ in range(40):
            g = SysctlGuard(root=str(fake), warn=errors.append, share=str(share),
                            identity=lambda: (7, 0))
            with g:
                if both(fake) != ("1\n", "1\n"):
                    errors.append("off while running: %r" % (both(fake),))
                time.sleep(0.0005)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert both(fake) == ("0\n", "0\n")
    assert os.listdir(share / "flowtop") == []


def test_a_flowtop_starting_while_the_last_one_removes_the_hand_over_still_joins(
        fake, share, warned, monkeypatch):
    # The last one out removes the directory under the lock; a flowtop that saw it a
    # moment before then opens "lock" in a directory that is gone (ENOENT). Seen as
    # ('1', '0') while running, in the test above, once in a CI run.
    from flowtop import handover as ho
    make = ho.Handover._make_dirs
    calls = []

    def racing(self):
        ok = make(self)
        calls.append(ok)
        if len(calls) == 2:                   # open()'s check passed, __enter__'s too:
            os.rmdir(self.dir)                # then the last one out removes it
        return ok
    monkeypatch.setattr(ho.Handover, "_make_dirs", racing)
    a = sharing(fake, share, warned)
    with a:
        assert a._handover is not None, "fell back to restoring its own"
        b = sharing(fake, share, warned)
        with b:
            pass
        assert both(fake) == ("1\n", "1\n")
    assert both(fake) == ("0\n", "0\n")
    assert warned == []

"""Failure modes at the netlink seam, without root or a kernel.

* The conntrack netlink interface is missing: socket() fails with
  EPROTONOSUPPORT (no nfnetlink), or the kernel answers the first request
  with NLMSG_ERROR (EOPNOTSUPP; EINVAL is what a kernel with nfnetlink but
  without nf_conntrack_netlink really says, see
  tests/kernel/test_failures_kernel.py).  flowtop must print one line that
  names the module (and OpenWrt's package), exit 1, and leave the sysctls
  alone.
* A dump the kernel flags NLM_F_DUMP_INTR: ``netlink.conntrack.dump`` redoes
  it and returns the clean attempt; after MAX_DUMP_RETRIES more interrupted
  attempts DumpInterrupted surfaces, and the CLI says so in one line.

The fakes stand in at two seams: ``FakeNetlink`` is a NetlinkSocket (``send``,
``recv``, ``port``) for ``netlink.conntrack.dump``; ``FakeRawSocket`` is what
``NetlinkSocket(sock_factory=...)`` wraps, so the CLI runs its real socket
code down to the syscalls.  Replies are built from the recorded dump in
tests/fixtures/ctnetlink-mixed.rec, re-addressed to each request's sequence number.
"""

import errno
import io
import os
import socket
import struct
import threading
import time

import pytest

import flowtop.conntrack
import flowtop.netlink.socket
from flowtop import cli, main
from flowtop.collector import Collector
from flowtop.netlink import conntrack as ct
from flowtop.netlink import ctnetlink, nlmsg
from flowtop.netlink.errors import DumpInterrupted
from flowtop.netlink.socket import NetlinkSocket
from flowtop.netlink.uapi import (CTA_STATS_GLOBAL_ENTRIES, NETLINK_NETFILTER, NLM_F_DUMP,
                                  NLM_F_DUMP_INTR, NLM_F_MULTI, NLMSG_ERROR)
from flowtop.recording import iter_dumps, read_header

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
MIXED = os.path.join(FIXTURES, "ctnetlink-mixed.rec")
ACCT = "net.netfilter.nf_conntrack_acct"
TIMESTAMP = "net.netfilter.nf_conntrack_timestamp"
PORT = 4242                # the port id the fake kernel gives our socket


# -- recorded messages, re-addressed -----------------------------------------------------

def recorded_messages(path=MIXED):
    """[(type, flags, body bytes)] of the first dump in a recording."""
    with open(path, "rb") as f:
        read_header(f)
        (_when, data), = list(iter_dumps(f))[:1]
    return [(mtype, flags, bytes(data[b:e]))
            for mtype, flags, _seq, _pid, b, e in nlmsg.iter_messages(data)]


MESSAGES = recorded_messages()
N_FLOWS = sum(1 for m in MESSAGES if m[0] == ctnetlink.MSG_CT_NEW)


def datagrams(messages, seq, port, intr_at=None, per_datagram=4):
    """The messages addressed to (seq, port), ``per_datagram`` to a datagram;
    the message at index ``intr_at`` carries NLM_F_DUMP_INTR."""
    packed = []
    for i, (mtype, flags, body) in enumerate(messages):
        flags |= NLM_F_MULTI
        if i == intr_at:
            flags |= NLM_F_DUMP_INTR
        packed.append(nlmsg.pack(mtype, flags, seq, body, pid=port))
    return [b"".join(packed[i:i + per_datagram]) for i in range(0, len(packed), per_datagram)]


def error_reply(request, err):
    """NLMSG_ERROR answering ``request`` with -err (nlmsgerr: errno + the request header)."""
    _len, _type, _flags, seq, _pid = nlmsg.NLMSGHDR.unpack_from(request)
    return nlmsg.pack(NLMSG_ERROR, 0, seq, struct.pack("=i", -err) + request[:16], pid=PORT)


def stats_reply(request, entries):
    _len, _type, _flags, seq, _pid = nlmsg.NLMSGHDR.unpack_from(request)
    body = ctnetlink.nfgenmsg() + struct.pack("=HH", 8, CTA_STATS_GLOBAL_ENTRIES) + \
        struct.pack(">I", entries)
    return nlmsg.pack(ctnetlink.MSG_CT_GET_STATS, 0, seq, body, pid=PORT)


def is_dump(request):
    _len, mtype, flags, _seq, _pid = nlmsg.NLMSGHDR.unpack_from(request)
    return mtype == ctnetlink.MSG_CT_GET and flags & NLM_F_DUMP == NLM_F_DUMP


class DumpScript:
    """Which dumps come back interrupted: ``interrupted`` is how many of the
    first attempts carry NLM_F_DUMP_INTR (None: every one)."""

    def __init__(self, interrupted):
        self.interrupted = interrupted
        self.dumps = 0            # dump requests seen
        self.seqs = []

    def answer(self, request, port):
        _len, _type, _flags, seq, _pid = nlmsg.NLMSGHDR.unpack_from(request)
        self.seqs.append(seq)
        self.dumps += 1
        flagged = self.interrupted is None or self.dumps <= self.interrupted
        msgs = MESSAGES
        if flagged:
            # What a dump racing the table may hand back: a flow twice, one missing.
            news = [i for i, m in enumerate(MESSAGES) if m[0] == ctnetlink.MSG_CT_NEW]
            msgs = (MESSAGES[:news[2]] + [MESSAGES[news[0]]] + MESSAGES[news[3]:])
        return datagrams(msgs, seq, port, intr_at=1 if flagged else None)


# -- the NetlinkSocket seam (send / recv / port) ------------------------------------------

class FakeNetlink:
    """A NetlinkSocket whose kernel replays the recorded dump per ``script``."""

    port = PORT

    def __init__(self, script):
        self.script = script
        self.queue = []
        self.sent = []

    def send(self, data):
        self.sent.append(bytes(data))
        assert is_dump(data), data
        self.queue.extend(self.script.answer(bytes(data), self.port))

    def recv(self):
        assert self.queue, "recv() with nothing queued: the dump would hang"
        return self.queue.pop(0)

    def close(self):
        pass


def clean_dump():
    return ct.dump(FakeNetlink(DumpScript(interrupted=0)))


def test_clean_fake_dump_is_the_recording():
    """The fake kernel itself: a clean dump decodes to the recording's flows."""
    flows = clean_dump()
    assert len(flows) == N_FLOWS >= 10
    assert len({f.key for f in flows}) == N_FLOWS


def test_interrupted_dump_is_redone_and_the_clean_result_returned():
    script = DumpScript(interrupted=1)
    sock = FakeNetlink(script)
    flows = ct.dump(sock)
    assert script.dumps == 2                              # one redo
    assert len(set(script.seqs)) == 2                     # a fresh sequence number each
    assert flows == clean_dump()                          # not the duplicate/missing attempt
    assert sock.queue == []                               # every datagram was read


@pytest.mark.parametrize("interrupted", range(1, ct.MAX_DUMP_RETRIES + 1))
def test_up_to_max_retries_interruptions_still_succeed(interrupted):
    script = DumpScript(interrupted=interrupted)
    assert ct.dump(FakeNetlink(script)) == clean_dump()
    assert script.dumps == interrupted + 1


def test_interrupted_every_time_raises_after_max_retries():
    script = DumpScript(interrupted=None)
    with pytest.raises(DumpInterrupted):
        ct.dump(FakeNetlink(script))
    # The first attempt and MAX_DUMP_RETRIES redos, then it gives up.
    assert script.dumps == ct.MAX_DUMP_RETRIES + 1


def test_recorder_keeps_only_the_clean_attempt():
    class Rec:
        def __init__(self):
            self.chunks = []

        def begin(self):
            self.chunks = []

        def chunk(self, data):
            self.chunks.append(bytes(data))

    rec = Rec()
    script = DumpScript(interrupted=2)
    ct.dump(FakeNetlink(script), recorder=rec)
    data = b"".join(rec.chunks)
    assert not any(flags & NLM_F_DUMP_INTR for _t, flags, *_ in nlmsg.iter_messages(data))
    assert sum(1 for m in nlmsg.iter_messages(data) if m[0] == ctnetlink.MSG_CT_NEW) == N_FLOWS


# -- the raw socket seam: the CLI end to end -------------------------------------------

class FakeRawSocket:
    """Stands in for socket.socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER).

    ``respond(request) -> [datagram]`` plays the kernel."""

    def __init__(self, respond):
        self.respond = respond
        self.queue = []
        self.closed = False

    def setsockopt(self, *a):
        pass

    def bind(self, addr):
        pass

    def getsockname(self):
        return (PORT, 0)

    def fileno(self):
        return -1

    def settimeout(self, t):
        pass

    def sendto(self, data, addr):
        self.queue.extend(self.respond(bytes(data)))
        return len(data)

    def recvfrom_into(self, buf):
        assert self.queue, "recv with nothing queued: flowtop would block forever"
        d = self.queue.pop(0)
        buf[:len(d)] = d
        return len(d), (0, 0)

    def close(self):
        self.closed = True


def install_fake_kernel(monkeypatch, respond):
    """Every NETLINK_NETFILTER socket flowtop opens talks to ``respond``; other sockets
    (route lookups, sock_diag) are real."""
    real = socket.socket
    opened = []

    def factory(family=-1, type_=-1, proto=-1, *a, **kw):
        if family == socket.AF_NETLINK and proto == NETLINK_NETFILTER:
            s = FakeRawSocket(respond)
            opened.append(s)
            return s
        return real(family, type_, proto, *a, **kw)

    monkeypatch.setattr(flowtop.netlink.socket._socket, "socket", factory)
    return opened


def sysctl_root(tmp_path, value="0"):
    root = tmp_path / "proc-sys"
    for name in (ACCT, TIMESTAMP):
        p = root.joinpath(*name.split("."))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(value + "\n")
    return root


def sysctls(root):
    return tuple(root.joinpath(*n.split(".")).read_text() for n in (ACCT, TIMESTAMP))


def run_main(args, root, timeout=10):
    """main.main in a thread (a bug must not hang the suite): (status, stdout, stderr).
    No route lookups (--no-iface); callers pass -G, and -n wherever a flow is read."""
    args = list(args) + ["--no-iface"]
    out, err = io.StringIO(), io.StringIO()
    result = {}

    def target():
        try:
            result["status"] = main.main(cli.parse(list(args)), stdout=out, stderr=err,
                                        sysctl_root=str(root))
        except BaseException as exc:           # noqa: B902 - reported to the test
            result["exc"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "flowtop %s still running after %ss" % (args, timeout)
    if "exc" in result:
        raise result["exc"]
    return result["status"], out.getvalue(), err.getvalue()


# Once, once as JSON (the streaming fast path), streaming JSON/CSV, text frames and the
# default (stdout is no terminal here: text frames): every path opens the socket first.
MODES = [["--once"], ["--once", "--json", "-n"], ["--once", "--json"], ["--json", "-t", "0.05"],
         ["--csv", "-t", "0.05"], ["-c", "-t", "0.05"], []]
MODE_IDS = ["once", "once-json-fast", "once-json", "stream-json", "stream-csv", "frames",
            "default"]


def assert_module_hint(status, out, err):
    assert status == 1, (status, err)
    assert out == "", out
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("flowtop: "), err
    assert "nf_conntrack_netlink" in lines[0], err
    assert "kmod-nf-conntrack-netlink" in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", MODES, ids=MODE_IDS)
def test_no_nfnetlink_socket_fails_eprotonosupport(monkeypatch, tmp_path, args):
    real = socket.socket
    calls = []

    def factory(family=-1, type_=-1, proto=-1, *a, **kw):
        if family == socket.AF_NETLINK and proto == NETLINK_NETFILTER:
            calls.append(proto)
            raise OSError(errno.EPROTONOSUPPORT, os.strerror(errno.EPROTONOSUPPORT))
        return real(family, type_, proto, *a, **kw)

    monkeypatch.setattr(flowtop.netlink.socket._socket, "socket", factory)
    root = sysctl_root(tmp_path)
    status, out, err = run_main(args + ["-G"], root)
    assert calls == [NETLINK_NETFILTER]
    assert_module_hint(status, out, err)
    assert sysctls(root) == ("0\n", "0\n")


def test_no_nfnetlink_via_sock_factory():
    """The other seam: NetlinkSocket(sock_factory=...) passes the OSError through."""
    def factory(*a):
        raise OSError(errno.EPROTONOSUPPORT, os.strerror(errno.EPROTONOSUPPORT))

    with pytest.raises(OSError) as info:
        NetlinkSocket(sock_factory=factory)
    assert info.value.errno == errno.EPROTONOSUPPORT
    assert "nf_conntrack_netlink" in main.explain(info.value, cli.parse([]))


@pytest.mark.parametrize("args", MODES, ids=MODE_IDS)
def test_kernel_answers_eopnotsupp(monkeypatch, tmp_path, args):
    requests = []

    def respond(request):
        requests.append(request)
        return [error_reply(request, errno.EOPNOTSUPP)]

    opened = install_fake_kernel(monkeypatch, respond)
    root = sysctl_root(tmp_path)
    status, out, err = run_main(args + ["-G"], root)
    assert_module_hint(status, out, err)
    assert sysctls(root) == ("0\n", "0\n")
    assert len(requests) == 1                   # gave up at the first answer
    assert opened and all(s.closed for s in opened)


@pytest.mark.parametrize("args", [["--once"], ["--json", "-t", "0.05"]], ids=["once", "stream"])
def test_kernel_answers_einval_for_missing_ctnetlink(monkeypatch, tmp_path, args):
    install_fake_kernel(monkeypatch, lambda req: [error_reply(req, errno.EINVAL)])
    root = sysctl_root(tmp_path)
    status, out, err = run_main(args + ["-G"], root)
    assert_module_hint(status, out, err)
    assert sysctls(root) == ("0\n", "0\n")


def test_kernel_answers_eopnotsupp_at_the_dump_after_count(monkeypatch, tmp_path):
    """The stats request passes, the dump is refused: still the one hint, and the
    sysctls the guard had switched on are back at 0."""
    def respond(request):
        if is_dump(request):
            return [error_reply(request, errno.EOPNOTSUPP)]
        return [stats_reply(request, N_FLOWS)]

    install_fake_kernel(monkeypatch, respond)
    root = sysctl_root(tmp_path)
    status, out, err = run_main(["--once", "-G", "-n"], root)
    assert_module_hint(status, out, err)
    assert sysctls(root) == ("0\n", "0\n")


# -- DumpInterrupted through the CLI ------------------------------------------------------

def interrupting_kernel(script):
    def respond(request):
        if is_dump(request):
            return script.answer(request, PORT)
        return [stats_reply(request, N_FLOWS)]
    return respond


@pytest.mark.parametrize("args", [["--once", "-n"], ["--once", "--csv", "-n"]],
                         ids=["once-text", "once-csv"])
def test_cli_once_redoes_an_interrupted_dump(monkeypatch, tmp_path, args):
    script = DumpScript(interrupted=2)
    install_fake_kernel(monkeypatch, interrupting_kernel(script))
    root = sysctl_root(tmp_path)
    status, out, err = run_main(args + ["-G", "--loopback"], root)
    assert status == 0, err
    assert err == ""
    assert script.dumps == 3
    assert sysctls(root) == ("0\n", "0\n")
    # Every flow once: the clean attempt, not the one with a flow twice and one missing.
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines)
                if "PROTO" in line.split() or line.startswith("time,"))
    rows = lines[head + 1:]
    assert len(rows) == N_FLOWS and len(set(rows)) == N_FLOWS, out


@pytest.mark.parametrize("args", [["--once", "-n"], ["--once", "--json", "-n"],
                                  ["--json", "-n", "-t", "0.01"], ["-c", "-n", "-t", "0.01"]],
                         ids=["once-text", "once-json-fast", "stream-json", "frames"])
def test_cli_interrupted_every_time_one_line_exit_1(monkeypatch, tmp_path, args):
    script = DumpScript(interrupted=None)
    install_fake_kernel(monkeypatch, interrupting_kernel(script))
    root = sysctl_root(tmp_path)
    status, _out, err = run_main(args + ["-G"], root)
    assert status == 1, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("flowtop: "), err
    assert "Traceback" not in err
    assert sysctls(root) == ("0\n", "0\n")


def test_cli_interrupted_every_time_restores_sysctls_even_so(monkeypatch, tmp_path):
    """Whatever escapes main(), the guard has put the sysctls back on the way out."""
    install_fake_kernel(monkeypatch, interrupting_kernel(DumpScript(interrupted=None)))
    root = sysctl_root(tmp_path)
    try:
        run_main(["--once", "-n", "-G"], root)
    except DumpInterrupted:
        pass
    assert sysctls(root) == ("0\n", "0\n")


def test_cli_once_json_fast_path_says_an_interrupted_dump(monkeypatch, tmp_path):
    """The --once --json fast path prints as the kernel sends: it cannot take
    lines back to redo the dump, so an interruption (which this kernel was
    never seen to flag for ctnetlink) ends with the one line and exit 1."""
    script = DumpScript(interrupted=1)
    install_fake_kernel(monkeypatch, interrupting_kernel(script))
    root = sysctl_root(tmp_path)
    status, out, err = run_main(["--once", "--json", "-n", "-G"], root)
    assert status == 1 and len(err.splitlines()) == 1, err
    assert "kept changing" in err and "Traceback" not in err
    assert sysctls(root) == ("0\n", "0\n")


def test_live_collector_survives_an_interrupted_dump():
    """The curses view's collector thread: an interrupted dump is an error of one
    tick, not the end of the thread (a dead collector freezes the screen)."""
    class Source:
        live = False          # no event socket: nothing here may touch the host's kernel
        calls = 0

        def snapshot(self, wants="list", enrich=None):
            Source.calls += 1
            if Source.calls == 1:
                raise DumpInterrupted()
            return time.time(), []

    hook_calls = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: hook_calls.append(args.exc_type)
    try:
        c = Collector(Source(), 0.01)
        c.start()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and Source.calls < 3 and c.is_alive():
            time.sleep(0.01)
        c.stop()
        alive = c.is_alive()
        c.join(2)
    finally:
        threading.excepthook = old_hook
    assert hook_calls == [], hook_calls
    assert alive and Source.calls >= 3


@pytest.mark.parametrize("args", [["--json"], ["--csv"], ["-c"]], ids=["json", "csv", "frames"])
def test_cli_stream_survives_one_interrupted_dump(monkeypatch, tmp_path, args):
    """The first dump comes back interrupted, the next ones clean; at the fourth dump
    request the user presses Ctrl-C.  Expected: exit 130, nothing on stderr, and the
    clean snapshots written."""
    script = DumpScript(interrupted=1)
    answer = interrupting_kernel(script)

    def respond(request):
        if is_dump(request) and script.dumps >= 3:
            raise KeyboardInterrupt
        return answer(request)

    install_fake_kernel(monkeypatch, respond)
    root = sysctl_root(tmp_path)
    status, out, err = run_main(args + ["-n", "-G", "--loopback", "-t", "0.01"], root)
    assert (status, err) == (130, "")
    assert out.strip()
    assert sysctls(root) == ("0\n", "0\n")

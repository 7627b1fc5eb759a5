"""Turn on conntrack accounting and timestamps for the life of a viewer, then put them back.

Without ``nf_conntrack_acct`` the kernel reports no byte/packet counters and without
``nf_conntrack_timestamp`` no flow start times.  A viewer may switch them on, but it must
leave the host as it found it, also when it is killed by SIGTERM or SIGHUP; and when it
cannot switch them on it must say so once and show those columns as absent, not as zero.

Several flowtops may run in one network namespace (sysctls are per namespace), so the
values found are not restored by whoever changed them but by the last flowtop of the
namespace to leave (``Handover``: a directory under /run keyed by the namespace's inode).

The root directory is a parameter so tests run on a temp dir without root.
"""

import atexit
import os
import _signal as signal  # not signal.py: its enums (and enum's import) cost a router ~0.3 s
import sys

from .handover import Handover, default_share, netns_identity

TYPE_CHECKING = False      # (typing's own, without typing's import)
if TYPE_CHECKING:          # annotations naming these or a union are text: importing __future__
    from collections.abc import Callable, Iterable   # and these was 1.0 M instructions a start

ACCT = "net.netfilter.nf_conntrack_acct"
TIMESTAMP = "net.netfilter.nf_conntrack_timestamp"
DEFAULT_NAMES = (ACCT, TIMESTAMP)

# What the user loses when a sysctl stays off; shown in the one warning line.
_CONSEQUENCE = {
    ACCT: "byte/packet counters will be shown as absent",
    TIMESTAMP: "flow durations will be shown as absent",
}

# SIGINT too: it raises KeyboardInterrupt once, as Python's own handler does, but a
# second Ctrl-C (or one during the restore) must not cut the unwinding short.
_SIGNALS = tuple(
    getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)
)


class Terminated(BaseException):
    """Raised by the guard's SIGTERM/SIGHUP handler so ``with`` unwinding restores sysctls.

    A BaseException, like KeyboardInterrupt, so ``except Exception`` does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)

    def __str__(self) -> str:
        try:
            import signal as named        # (the enum of names, for this one line)
            return "terminated by " + named.Signals(self.signum).name
        except ValueError:
            return f"terminated by signal {self.signum}"


def exit_status_for(exc: "BaseException | None") -> int:
    """Shell-style exit status: 0 for None, 128+signum for Terminated, 130 for Ctrl-C, else 1."""
    if exc is None:
        return 0
    if isinstance(exc, Terminated):
        return 128 + exc.signum
    if isinstance(exc, KeyboardInterrupt):
        return 128 + int(signal.SIGINT)
    return 1


def _warn_stderr(line: str) -> None:
    # sys.stderr is looked up per call, so a redirected stderr (tests, curses) is honoured.
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class SysctlGuard:
    """Context manager: enable the given sysctls on enter, restore the ones it changed on exit
    (with a ``share`` directory: the last flowtop of the namespace to exit restores; Handover).

    After enter, ``acct``/``timestamp`` (and ``state`` for any name) are True/False/None:
    on, off, or unknown (missing or unreadable) -- the value in effect now, so callers can
    show counters as absent rather than zero. Failures become one ``warn`` line per name,
    never an exception. ``enabled=False`` only reads.
    """

    def __init__(
        self,
        names: "Iterable[str]" = DEFAULT_NAMES,
        root: str = "/proc/sys",
        enabled: bool = True,
        warn: "Callable[[str], None]" = _warn_stderr,
        share: "str | None | bool" = True,
        identity: "Callable[[], tuple[int, int]]" = netns_identity,
    ) -> None:
        self.names: tuple[str, ...] = tuple(names)
        self.root = os.fspath(root)
        self.enabled = enabled
        self.warn = warn
        # share: a directory where the flowtops of a namespace meet (Handover); True: /run
        # for the real /proc/sys; None/False: this guard restores what it changed itself.
        self.share = default_share(self.root) if share is True else (share or None)
        self.identity = identity
        self._handover = None
        self.state: dict[str, bool | None] = {n: None for n in self.names}
        self._changed: dict[str, bytes] = {}  # name -> exact bytes read before we wrote
        self._old_handlers: dict[int, object] = {}
        self._active = False
        self._deferring = False
        self._unwinding = False                # an interrupt was raised: on the way out
        self._pending: int | None = None

    # -- values in effect -------------------------------------------------------------

    @property
    def acct(self) -> "bool | None":
        return self.state.get(ACCT)

    @property
    def timestamp(self) -> "bool | None":
        return self.state.get(TIMESTAMP)

    def path(self, name: str) -> str:
        return os.path.join(self.root, *name.split("."))

    # -- context manager --------------------------------------------------------------

    def __enter__(self) -> "SysctlGuard":
        if self._active:
            raise RuntimeError("SysctlGuard is already active")
        self._active = True
        self._deferring = False
        self._unwinding = False
        self._pending = None
        try:
            # Handlers and atexit first: a signal that lands between a write and the
            # handler install would otherwise kill us with the sysctl left changed.
            self._install_handlers()
            atexit.register(self.restore)
            self._enable_all()
        except BaseException:
            # Terminated/KeyboardInterrupt mid-enter: __exit__ will not run, so undo here.
            self._close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        pending = self._close()
        if pending is not None and exc_type is None:
            if pending == signal.SIGINT:
                raise KeyboardInterrupt
            raise Terminated(pending)
        return False

    def current(self) -> dict:
        """Re-read the values in effect: another program may change them while we run.
        Cheap: ~1.5 us per name here (a kept fd's pread would be 0.5 us: not worth an fd)."""
        for name in self.names:
            try:
                self.state[name] = self._parse(self._read(name))
            except (OSError, ValueError):
                self.state[name] = None
        return {"acct": self.acct, "timestamp": self.timestamp}

    def restore(self) -> None:
        """Write back the previous value of each sysctl this guard changed, or, with a
        Handover, the values found before any flowtop of this namespace changed them
        when no other one still runs; idempotent."""
        handover, self._handover = self._handover, None
        if handover is not None:
            try:
                with handover:
                    handover.leave()
                    if handover.others() == 0:
                        found = handover.originals()
                        mine = {n: found.pop(n) for n in self.names if n in found}
                        handover.save(found)
                        self._changed.update(mine)
                        self._write_back()    # under the lock: none may start meanwhile
                        if not found:
                            handover.remove()
            except OSError as e:
                handover.leave()
                self.warn("flowtop: cannot hand over %s (%s): leaving them as they are"
                          % (", ".join(self.names), _reason(e)))
            return
        self._write_back()

    def _write_back(self) -> None:
        for name in list(self._changed):
            old = self._changed[name]
            try:
                self._write(name, old)
            except OSError as e:
                value = old.decode("ascii", "replace").strip()
                self.warn(f"flowtop: cannot restore {name} to {value} ({_reason(e)})")
            else:
                self.state[name] = self._parse(old)
            # Dropped only after the attempt: an interrupt before this line means atexit
            # writes the same old value again, which is harmless.
            del self._changed[name]

    # -- internals --------------------------------------------------------------------

    def _close(self) -> "int | None":
        """Restore sysctls, then handlers; return a signal that arrived meanwhile, if any."""
        if not self._active:
            return None
        # From here a SIGTERM/SIGHUP is only noted: raising it mid-restore would leave a
        # sysctl changed. atexit stays registered until restore is done, as a backstop.
        self._deferring = True
        self.restore()
        self._restore_handlers()
        atexit.unregister(self.restore)
        self._active = False
        return self._pending

    def _enable_all(self) -> None:
        handover = None
        if self.enabled and self.share:
            try:
                handover = Handover.open(self.share, self.identity())
            except OSError:
                handover = None
        if handover is None:
            for name in self.names:
                self._enable(name)
            return
        try:
            with handover:
                handover.join()
                self._handover = handover      # from here restore() leaves it
                found = handover.originals()
                for name in self.names:
                    self._enable(name)
                # A value we switched on was off: whatever was recorded for it is stale.
                found.update(self._changed)
                handover.save(found)
                self._changed = {}             # the last flowtop to leave restores them
        except OSError:
            # No hand-over after all: this guard restores what it changed itself.
            self._handover = None
            handover.leave()
            for name in self.names:
                if self.state.get(name) is None:
                    self._enable(name)

    def _enable(self, name: str) -> None:
        try:
            raw = self._read(name)
            on = self._parse(raw)
        except (OSError, ValueError) as e:
            self.state[name] = None
            self._warn_off(name, e, "enable" if self.enabled else "read")
            return
        self.state[name] = on
        if on or not self.enabled:
            return
        try:
            self._write(name, b"1\n")
        except OSError as e:
            self._warn_off(name, e, "enable")
            return
        self._changed[name] = raw
        self.state[name] = True

    def _warn_off(self, name: str, exc: BaseException, verb: str) -> None:
        line = f"flowtop: cannot {verb} {name} ({_reason(exc)})"
        if name in _CONSEQUENCE:
            line += ": " + _CONSEQUENCE[name]
        self.warn(line)

    @staticmethod
    def _parse(raw: bytes) -> bool:
        text = raw.decode("ascii").strip()
        try:
            return int(text) != 0
        except ValueError:
            raise ValueError(f"unexpected value {text!r}") from None

    def _read(self, name: str) -> bytes:
        # os.open/read: 1.5 us here against 4 us for open() (read every tick: current())
        fd = os.open(self.path(name), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            return os.read(fd, 4096)
        finally:
            os.close(fd)

    def _write(self, name: str, data: bytes) -> None:
        # No O_CREAT: a sysctl that vanished must not turn into a stray file.
        fd = os.open(self.path(name), os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0))
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._deferring or self._unwinding:
            self._pending = signum     # already on the way out: noted, not raised again
            return
        self._unwinding = True
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    def _install_handlers(self) -> None:
        for sig in _SIGNALS:
            old = signal.getsignal(sig)
            if old == signal.SIG_IGN:
                continue  # e.g. under nohup: the process is meant to survive it
            try:
                signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread, where alone it works (and no
                return          # threading to ask: its import, ~1.5 M instructions a start)
            self._old_handlers[sig] = old

    def _restore_handlers(self) -> None:
        for sig in list(self._old_handlers):
            old = self._old_handlers.pop(sig)
            # None: the previous handler was not set from Python and cannot be put back.
            signal.signal(sig, signal.SIG_DFL if old is None else old)

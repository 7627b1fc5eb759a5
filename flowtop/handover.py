"""Where the flowtops of one network namespace meet (a directory under /run
keyed by the namespace's inode), so that the last one to leave puts the
sysctls back, not each one the values it found.
"""

import errno
import os
import stat
import sys
import time

RUN_DIRS = ("/run", "/var/run")          # OpenWrt has only /var/run (a link to /tmp/run)
LOCK_WAIT = 2.0       # seconds to wait for another flowtop's enter/exit (each takes ~1 ms)


def netns_identity(proc="/proc"):
    """(inode of this process's network namespace, its cookie or 0).

    Inode numbers of namespaces are reused once one is gone; the cookie
    (SO_NETNS_COOKIE, Linux 5.14+) never is, so it tells a reused inode apart.
    """
    ino = os.stat(os.path.join(proc, "self", "ns", "net")).st_ino
    cookie = 0
    try:
        import _socket as socket  # not socket.py (see netlink/socket.py)
        from .netlink.uapi import SO_NETNS_COOKIE
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            cookie = int.from_bytes(sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8),
                                    sys.byteorder)
        finally:
            sock.close()
    except (OSError, ImportError):
        pass
    return ino, cookie


def _open_nofollow(path, flags):
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                   0o600)


class Handover:
    """Where the flowtops of one network namespace meet, so none switches accounting
    off under another.

    The rule: the values found before the first flowtop changed them are kept in
    ``orig``; the last flowtop of the namespace to leave writes them back, and until
    then they stay on. Each flowtop holds an flock on its own marker file while it
    runs; the kernel drops it when the process dies (SIGKILL, a crash), so a marker
    nobody holds belongs to an instance that is gone. Every step runs under ``lock``.
    """

    def __init__(self, directory, cookie=0):
        self.dir = directory
        self.cookie = cookie
        self._lock = None
        self._marker = None        # (fd, name) of ours, flock'ed while we run

    @classmethod
    def open(cls, base, identity):
        """The namespace's directory under ``base``, or None when it cannot be made
        or is not ours alone (then each flowtop restores its own)."""
        ino, cookie = identity
        top = os.path.join(base, "flowtop")
        handover = cls(os.path.join(top, "net-%d" % ino), cookie)
        return handover if handover._make_dirs() else None

    def _make_dirs(self):
        try:
            for path in (os.path.dirname(self.dir), self.dir):
                try:
                    os.mkdir(path, 0o700)
                except FileExistsError:
                    pass
                st = os.lstat(path)
                if (not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid()
                        or st.st_mode & 0o022):
                    return False
        except OSError:
            return False
        return True

    def __enter__(self):
        lock = os.path.join(self.dir, "lock")
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            if not self._make_dirs():     # the last one to leave removes them
                raise OSError(errno.EPERM, "not a private directory", self.dir)
            fd = self._try_lock(lock)
            if fd is not None:
                self._lock = fd
                return self
            if time.monotonic() > deadline:
                raise OSError(errno.EWOULDBLOCK, "another flowtop holds the lock for %gs"
                              % LOCK_WAIT, lock)
            time.sleep(0.005)

    @staticmethod
    def _try_lock(lock):
        """The fd of ``lock`` flock'ed, or None when another holds it or the last one
        out removed it meanwhile (then the caller makes the directory again)."""
        import fcntl
        try:
            fd = _open_nofollow(lock, os.O_RDWR | os.O_CREAT)
        except FileNotFoundError:         # the directory went after our check
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                return fd                 # locked, and still the namespace's lock file
        except (BlockingIOError, FileNotFoundError):
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return None

    def remove(self):
        """Under the lock, when nobody runs and nothing is left to restore: the
        directory goes (one per namespace would pile up); waiters start afresh."""
        for name in ("orig.tmp", "lock"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass                          # a marker appeared: it is not ours to remove

    def __exit__(self, *exc):
        fd, self._lock = self._lock, None
        if fd is not None:
            os.close(fd)               # drops the flock
        return False

    def join(self):
        """Add our marker, flock'ed for as long as we run."""
        import fcntl
        name = "%d-%s" % (os.getpid(), os.urandom(3).hex())
        fd = _open_nofollow(os.path.join(self.dir, name), os.O_RDWR | os.O_CREAT | os.O_EXCL)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        self._marker = (fd, name)

    def leave(self):
        marker, self._marker = self._marker, None
        if marker is not None:
            fd, name = marker
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
            os.close(fd)

    def others(self):
        """How many other flowtops of this namespace run; removes the markers of
        those that are gone."""
        import fcntl
        mine = self._marker[1] if self._marker else None
        alive = 0
        for name in os.listdir(self.dir):
            if name in ("lock", "orig", "orig.tmp") or name == mine:
                continue
            path = os.path.join(self.dir, name)
            try:
                fd = _open_nofollow(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                alive += 1             # its owner holds it: it runs
            else:
                try:
                    os.unlink(path)    # nobody holds it: its owner is gone
                except OSError:
                    pass
            finally:
                os.close(fd)
        return alive

    def originals(self):
        """{name: bytes} of the values found before a flowtop changed them."""
        try:
            fd = _open_nofollow(os.path.join(self.dir, "orig"), os.O_RDONLY)
        except FileNotFoundError:
            return {}
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
        values = {}
        cookie = 0
        for line in data.split(b"\n"):
            parts = line.split()
            if len(parts) != 2:
                continue
            key, value = parts
            if key == b"cookie" and value.isdigit():
                cookie = int(value)
            elif value.lstrip(b"-").isdigit() and len(value) <= 11:   # an int sysctl's value
                values[key.decode("ascii", "replace")] = value + b"\n"
        if cookie and self.cookie and cookie != self.cookie:
            return {}                  # a namespace that is gone had this inode
        return values

    def save(self, values):
        path = os.path.join(self.dir, "orig")
        if not values:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return
        lines = ["cookie %d" % self.cookie] + ["%s %s" % (k, v.decode("ascii").strip())
                                                for k, v in sorted(values.items())]
        tmp = path + ".tmp"
        fd = _open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, ("\n".join(lines) + "\n").encode("ascii"))
        finally:
            os.close(fd)
        os.replace(tmp, path)


def default_share(root):
    """Where instances meet: only for the real /proc/sys (a test's fake root is its own)."""
    if os.path.normpath(root) != "/proc/sys":
        return None
    for base in RUN_DIRS:
        if os.path.isdir(base):
            return base
    return None

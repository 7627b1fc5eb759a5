"""Socket inodes to the processes holding them, for the process enricher.

A socket's inode appears as the ``socket:[INODE]`` link of a descriptor in
/proc/PID/fd.  The inode -> PID map is a cache; a pass over /proc runs only
for inodes it lacks: it stat()s each /proc/PID/fd, highest PID first (new
processes are the likely owners; since Linux 6.2 st_size is the number of
open descriptors), reads the links of new PIDs and of PIDs whose count
changed, and stops once every unknown inode is found.  Inodes still unknown
(same count after a close and an open; kernels < 6.2, where st_size is 0)
get one full pass at most every ``retry_interval``; what a full pass cannot
find (kernel sockets, other PID namespaces) is remembered and retried only
by the cheap pass.  Costs: bench/README.md, "process".
"""

import os

from ..memo import Memo
from ..text import sanitize
from .procfs import STATUS_CAP, process_name, pwd_name, read_small, status_uid

__all__ = ["ProcInfo", "FORWARDED", "Owners"]


class ProcInfo:
    """A process as shown: ``pid`` (int), ``name`` and ``user`` (sanitized
    text; user is the name, else the uid as text, else None)."""

    __slots__ = ("pid", "name", "user")

    def __init__(self, pid, name, user):
        self.pid = pid
        self.name = name
        self.user = user

    def __eq__(self, other):
        return (isinstance(other, ProcInfo)
                and (self.pid, self.name, self.user) == (other.pid, other.name, other.user))

    def __hash__(self):
        return hash((self.pid, self.name, self.user))

    def __repr__(self):
        return "ProcInfo(pid=%r, name=%r, user=%r)" % (self.pid, self.name, self.user)


# Neither end of the flow is on this host (a router's flow).  Test with ``is``.
FORWARDED = ProcInfo(None, "forwarded", None)


def fd_count(path):
    """Open descriptors of a /proc/PID/fd (Linux 6.2+; 0 before)."""
    return os.stat(path).st_size


class _Pid:
    __slots__ = ("nfds", "inodes")

    def __init__(self, nfds, inodes):
        self.nfds = nfds            # st_size of /proc/PID/fd when scanned
        self.inodes = inodes        # socket inodes it held then (tuple)


class Owners:
    """inode -> PID (``owner``) and PID -> ProcInfo (``info``), kept across
    ticks.  ``fd_count(path)`` is a seam: a fake /proc in a temp dir has no
    descriptor counts.  ``user_name(uid)`` -> name or None."""

    def __init__(self, proc_root, user_name=None, retry_interval=2.0, fd_count=fd_count):
        self.proc_root = proc_root
        self.retry_interval = retry_interval
        self.fd_count = fd_count
        self._user_name = user_name or pwd_name
        self.owner = {}         # inode -> pid (every socket link seen in a scan)
        self.info = {}          # pid -> ProcInfo
        self._pids = {}         # pid -> _Pid
        self._users = Memo(4096)    # uid -> user text
        self._live = set()      # inodes in the socket table
        self.touched = set()    # inodes whose owner or its name the last resolve changed
        self._missed = set()    # inodes a full pass could not find
        self._last_pass = None
        self._last_full = None

    def resolve(self, live, now, st):
        """Find the owners of the inodes of ``live`` not known yet; a pass
        over /proc at most as the module doc says.  Fills ``st``'s counts."""
        self._live = live
        self.touched = set()
        owner = self.owner
        pending = {ino for ino in live if ino not in owner}
        st.unknown = len(pending)
        self._missed &= pending
        fresh = not pending <= self._missed
        if fresh or (pending and (self._last_pass is None
                                  or now - self._last_pass >= self.retry_interval)):
            self._last_pass = now
            self._pass(pending, now, st)
        st.unresolved = len(pending)

    def info_of(self, pid):
        """The ProcInfo of ``pid`` (read once, then kept), None if gone."""
        info = self.info.get(pid)
        if info is None:
            info = self._read_info(pid, None)
            if info is not None:
                self.info[pid] = info
        return info

    def _pass(self, pending, now, st):
        """One pass over /proc for the inodes in ``pending`` (found ones are
        removed from it): new and changed PIDs, then, if fresh inodes remain
        and the interval allows, every PID."""
        root = self.proc_root
        try:
            names = os.listdir(root)
        except OSError:
            return
        pids = [int(n) for n in names if n.isdigit()]
        pids.sort(reverse=True)             # new PIDs are likely the highest: found first
        present = set(pids)
        for pid in [p for p in self._pids if p not in present]:
            self._drop(pid, pending)
        known = self._pids
        skipped = []
        count = self.fd_count
        for pid in pids:
            if not pending:
                break
            try:
                nfds = count("%s/%d/fd" % (root, pid))
            except OSError:
                continue                    # gone, or not ours to see
            st.pids_stat += 1
            old = known.get(pid)
            if old is not None and old.nfds == nfds:
                skipped.append((pid, nfds))
                continue
            self._scan(pid, nfds, pending, st)
        if pending and not pending <= self._missed and (
                self._last_full is None or now - self._last_full >= self.retry_interval):
            self._last_full = now
            st.full_scan = True
            for pid, nfds in skipped:
                if not pending:
                    break
                self._scan(pid, nfds, pending, st)
            self._missed = set(pending)

    def _drop(self, pid, pending):
        old = self._pids.pop(pid)
        self.info.pop(pid, None)
        self.touched.update(old.inodes)
        owner = self.owner
        live = self._live
        for ino in old.inodes:
            if owner.get(ino) == pid:
                del owner[ino]
                if ino in live:
                    pending.add(ino)        # shared with another process, maybe

    def _scan(self, pid, nfds, pending, st):
        inodes = self._socket_inodes(pid, st)
        owner = self.owner
        old = self._pids.get(pid)
        self.touched.update(inodes)
        if old is not None:
            self.touched.update(old.inodes)
            for ino in old.inodes:
                if owner.get(ino) == pid:
                    del owner[ino]
        self.info.pop(pid, None)
        live = self._live
        mine = False
        for ino in inodes:
            if owner.setdefault(ino, pid) == pid and ino in live:
                mine = True
                pending.discard(ino)
        self._pids[pid] = _Pid(nfds, tuple(inodes))
        if mine:
            info = self._read_info(pid, st)
            if info is not None:
                self.info[pid] = info

    def _socket_inodes(self, pid, st):
        """The socket inodes of /proc/PID/fd's links."""
        path = "%s/%d/fd" % (self.proc_root, pid)
        try:
            names = os.listdir(path)
        except OSError:
            names = ()                      # gone or not ours: remember the count
        st.pids_scanned += 1
        st.fds += len(names)
        readlink = os.readlink
        inodes = []
        for name in names:
            try:
                link = readlink(path + "/" + name)
            except OSError:
                continue
            if link.startswith("socket:[") and link.endswith("]"):
                try:
                    inodes.append(int(link[8:-1]))
                except ValueError:
                    pass
        return inodes

    def _read_info(self, pid, st):
        """ProcInfo from /proc/PID/{comm,cmdline,status}, None if gone."""
        base = "%s/%d/" % (self.proc_root, pid)
        name = process_name(base)
        if name is None:
            return None
        if st is not None:
            st.info_reads += 1
        return ProcInfo(pid, sanitize(name.decode("utf-8", "replace")),
                        self._user(status_uid(read_small(base + "status", STATUS_CAP))))

    def _user(self, uid):
        if uid is None:
            return None
        user = self._users.get(uid)
        if user is None:
            name = self._user_name(uid)
            user = self._users.put(uid, sanitize(name, 32) if name else str(uid))
        return user

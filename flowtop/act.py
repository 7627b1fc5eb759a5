"""Act on the table: delete flows from the kernel's conntrack table (iptstate's
``x``, ``conntrack -D``).  In the live view the selected flow, or every flow
of the selected group, after a y/n question that names them; for scripts
``--delete EXPR`` (``flowtop.delete``).  A deleted flow's next packet
makes a new entry (it is not blocked): the firewall decides again, as for a
new connection.  Refused in one line without CAP_NET_ADMIN or on a replay.
"""

import errno

from .netlink.uapi import CAP_NET_ADMIN

REPLAY = "cannot delete flows of a recording (--replay): nothing to delete them from"
NO_ADMIN = "deleting flows needs CAP_NET_ADMIN: run flowtop as root"


def may_admin(proc_root="/proc"):
    """Whether this process has CAP_NET_ADMIN (its effective set); None
    when /proc does not say (then the kernel's answer decides)."""
    try:
        with open(proc_root + "/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def refusal(live, proc_root="/proc"):
    """The one line that refuses a delete here, or None."""
    if not live:
        return REPLAY
    if may_admin(proc_root) is False:
        return NO_ADMIN
    return None


class Deleter:
    """Deletes flows over a ctnetlink socket of its own (opened on first
    use: the collector's is busy in its thread).  ``sock_factory`` is
    injected for tests."""

    def __init__(self, live=True, sock_factory=None, proc_root="/proc"):
        self.live, self.proc_root = live, proc_root
        self._factory = sock_factory
        self._sock = None

    def refusal(self):
        return refusal(self.live, self.proc_root)

    def delete(self, flows):
        """(deleted, already gone) counts; raises OSError/NetlinkError."""
        from .netlink import conntrack as ct
        if self._sock is None:
            if self._factory is None:
                from .netlink.socket import NetlinkSocket
                self._factory = NetlinkSocket
            self._sock = self._factory()
        deleted, gone = ct.delete_many(self._sock, flows)
        return len(deleted), len(gone)

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def outcome(deleted, gone):
    """"deleted 3 flows (1 had already ended)"."""
    text = "deleted %d flow%s" % (deleted, "" if deleted == 1 else "s")
    if gone:
        text += " (%d had already ended)" % gone
    return text


def failure(exc):
    """One line for a delete the kernel refused."""
    code = getattr(exc, "errno", None)
    if code in (errno.EPERM, errno.EACCES):
        return NO_ADMIN
    return "delete failed: %s" % (getattr(exc, "strerror", None) or exc)


# --- the live view: target, question, answer ------------------------------------------

def targets(screen):
    """(what, flows) the delete key aims at on a views.screen Screen:
    the selected flow, or every open flow of the selected group that the
    toggles show (not narrowed by the ``/`` text, which matched the
    groups); None when nothing is selected."""
    from .views.select import select
    ui = screen.ui
    if not ui.view or screen.snap is None:
        return None
    st, fmt = screen.state, screen.fmt
    picked = ui.view[ui.selected]
    if st.view == "flows":
        if picked.closed:
            return None
        e = picked.entry
        return describe_flow(fmt, e), [e]
    import copy     # with weakref 4.7 M instructions: main imports this module at the start
    group = copy.copy(st)
    group.view, group.group, group.filter = "flows", (st.view, picked.key, picked.label), ""
    flows = [r.entry for r in select(screen.snap.rows, group, fmt, sort=False)
             if not r.closed]
    if not flows:
        return None
    return "%d flow%s of %s %s" % (len(flows), "" if len(flows) == 1 else "s",
                                   _GROUP_NAMES.get(st.view, st.view), picked.label), flows


_GROUP_NAMES = {"process": "process", "host": "host", "country": "country",
                "iface": "interface"}


def describe_flow(fmt, e):
    """"tcp 10.0.0.2:41234 -> 1.1.1.1:443 (https, firefox/1300)"."""
    from .model import proto_name
    from .netlink.uapi import IPPROTO_GRE
    gre = e.l4proto == IPPROTO_GRE
    text = "%s %s -> %s" % (proto_name(e.l4proto),
                            fmt.endpoint(e.family, e.src, None if gre else e.sport, names=False),
                            fmt.endpoint(e.family, e.dst, None if gre else e.dport, names=False))
    enrich = fmt.enrich
    if enrich is not None and enrich.process is not None:
        label = enrich.process_label(e)
        if label:
            text += " (%s)" % label
    return text


def ask(screen):
    """The delete key: refuse in one line, or ask y/n naming the flows."""
    deleter = screen.info.get("act")
    why = deleter.refusal() if deleter is not None else REPLAY
    if why:
        screen.message = why
        return
    aim = targets(screen)
    if aim is None:
        screen.message = "nothing to delete here"
        return
    screen.confirm = aim
    screen.ui.mode = "confirm"


def answer(screen, ch):
    """The key after the question: y deletes, anything else cancels."""
    what, flows = screen.confirm
    screen.confirm, screen.ui.mode = None, "table"
    if ch not in ("y", "Y"):
        screen.message = "not deleted"
        return
    try:
        screen.message = outcome(*screen.info["act"].delete(flows))
    except OSError as exc:
        screen.message = failure(exc)


def question(screen):
    return "delete %s? y/n" % screen.confirm[0]


def for_source(source):
    """The live view's Deleter (a replay gets one that refuses)."""
    return Deleter(live=getattr(source, "live", False))

"""AF_NETLINK sockets: the only module in flowtop that makes netlink syscalls."""

# The C module, not socket.py: its enum conversions of every AF_/SOCK_/MSG_ constant
# cost ~0.3 s of a mipsel router's start-up, and flowtop needs none of its wrappers.
import _socket
from errno import ENOBUFS

from .errors import DecodeError
from .uapi import (NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP, NETLINK_NETFILTER,
                   SO_RCVBUFFORCE, SOL_NETLINK)

RECV_BUFFER = 1 << 16     # the kernel caps a dump datagram at 32 KiB (netlink_recvmsg)


class NetlinkSocket:
    """A bound netlink socket that receives into one preallocated buffer.

    ``recv()`` returns the bytes of one datagram (whole messages).  Replies
    not sent by the kernel (port 0) are dropped: only the kernel may talk to
    us on this socket.
    """

    def __init__(self, protocol=NETLINK_NETFILTER, groups=0, rcvbuf=None, sock_factory=None):
        factory = sock_factory or _socket.socket
        self.sock = factory(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, protocol)
        try:
            if rcvbuf:
                try:
                    self.sock.setsockopt(_socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
                except PermissionError:
                    self.sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, rcvbuf)
            self.sock.bind((0, groups))
            self.port = self.sock.getsockname()[0]
        except BaseException:
            self.sock.close()
            raise
        self._buf = bytearray(RECV_BUFFER)
        self._view = memoryview(self._buf)
        self._poll = None

    def fileno(self):
        return self.sock.fileno()

    def send(self, data):
        self.sock.sendto(data, (0, 0))

    def subscribe(self, group):
        self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)

    def unsubscribe(self, group):
        self.sock.setsockopt(SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, group)

    def discard(self, most=1 << 20):
        """Drop the datagrams waiting, unread (a non-blocking socket; up to
        ``most``; an overflow's ENOBUFS too): how many there were."""
        n = 0
        while n < most:
            try:
                self.sock.recv_into(self._buf)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != ENOBUFS:
                    raise
            n += 1
        return n

    def settimeout(self, seconds):
        self.sock.settimeout(seconds)

    def gettimeout(self):
        return self.sock.gettimeout()

    def readable(self, seconds):
        """Whether a datagram waits, after waiting up to ``seconds`` for one
        (a non-blocking socket: ``settimeout(0.0)``)."""
        if self._poll is None:
            import select
            self._poll = select.poll()
            self._poll.register(self.sock.fileno(), select.POLLIN)
        return bool(self._poll.poll(int(seconds * 1000)))

    def recv(self):
        """One datagram from the kernel as bytes."""
        while True:
            n, addr = self.sock.recvfrom_into(self._buf)
            if n >= len(self._buf):
                raise DecodeError("netlink datagram larger than the %d-byte buffer" % len(self._buf))
            if addr[0] != 0:
                continue            # not from the kernel: ignore
            return bytes(self._view[:n])

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

"""Runs inside a test namespace: ICMP destination-unreachable messages
whose quoted packet is cut short.  conntrack's icmp_error cannot read the
inner tuple and counts each in the per-CPU ``error`` statistic (on output
and again on input over loopback): a trouble counter a test can move.
``python3 icmperr.py COUNT [SECONDS]`` spreads COUNT messages over SECONDS."""

import socket
import struct
import sys
import time


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def main(count, seconds=0.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    inner = b"\x45\x00\x00\x1c"                 # 4 bytes of an IPv4 header
    head = struct.pack("!BBHI", 3, 1, 0, 0)
    packet = struct.pack("!BBHI", 3, 1, checksum(head + inner), 0) + inner
    for _ in range(count):
        sock.sendto(packet, ("127.0.0.1", 0))
        if seconds:
            time.sleep(seconds / count)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)

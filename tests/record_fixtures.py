#!/usr/bin/env python3
"""Record the kernel dumps in tests/fixtures/ from a namespace set up here.

Run as root from the repo root:  python3 tests/record_fixtures.py
Each NAME.rec is a ``flowtop --once --record`` of a real table and
NAME.conntrack.txt the ``conntrack -L -o extended,id`` listing taken right
after it: the expected values the decoder tests compare against.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.helperns import RULES, ftp_session  # noqa: E402
from tests.nsutil import SYSCTLS, Netns, kernel_ready, populate  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def record(ns, name):
    rec = os.path.join(FIXTURES, name + ".rec")
    r = ns.flowtop("--once", "--json", "--no-sysctl", "--record", rec)
    if r.returncode != 0:
        raise SystemExit("flowtop failed: %s" % r.stderr.strip())
    with open(os.path.join(FIXTURES, name + ".conntrack.txt"), "w") as f:
        f.write(ns.conntrack_list())
    print("recorded %s: %d flows" % (name, len(r.stdout.splitlines())))


def udp_burst(ns, n):
    """``n`` one-datagram UDP flows to distinct ports (a multi-part dump)."""
    code = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "for p in range(20000,20000+%d): s.sendto(b'q',('127.0.0.2',p))\n" % n)
    ns.run(sys.executable, "-c", code)


def record_helper():
    """ctnetlink-helper.rec: an FTP control flow (helper ftp, labels 5 and 70) and the
    RELATED data flow it expected (CTA_TUPLE_MASTER)."""
    with Netns("rec", ruleset=RULES) as ns:
        ftp_session(ns)
        record(ns, "ctnetlink-helper")


def main(names=()):
    """Record every fixture, or only those ``names`` (``helper``)."""
    ok, why = kernel_ready()
    if not ok:
        raise SystemExit("record_fixtures: %s" % why)
    os.makedirs(FIXTURES, exist_ok=True)
    if names:
        for name in names:
            {"helper": record_helper}[name]()
        return
    record_helper()
    with Netns("rec") as ns:
        populate(ns)
        record(ns, "ctnetlink-mixed")
        udp_burst(ns, 400)
        record(ns, "ctnetlink-multipart")
    off = dict(SYSCTLS, **{"net.netfilter.nf_conntrack_acct": 0,
                           "net.netfilter.nf_conntrack_timestamp": 0})
    with Netns("rec", sysctls=off) as ns:
        populate(ns)
        record(ns, "ctnetlink-acct-off")
    subprocess.run(["ls", "-l", FIXTURES])


if __name__ == "__main__":
    main(sys.argv[1:])

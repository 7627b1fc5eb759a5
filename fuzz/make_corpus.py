#!/usr/bin/env python3
"""Write the seed corpora of the atheris harnesses from tests/fixtures.

    python3 fuzz/make_corpus.py            # -> fuzz/corpus/{ctnetlink,route}/

ctnetlink: every recorded dump (tests/fixtures/*.rec) cut into seeds a
fuzzer can mutate cheaply: each message alone followed by NLMSG_DONE, runs
of consecutive messages up to MAX_LEN bytes, the small dumps whole, and a
few hand-made edge cases (empty body, bare DONE, an NLMSG_ERROR).

route: each input starts with one selector byte (see fuzz_route.py), then
the recorded rtnetlink dumps (route-*.bin: addresses, links, route replies,
the routing tables, the rules, the neighbours) and sock_diag dumps
(sockdiag-dump.json), whole and one message at a time.

Deterministic: the same fixtures give the same files (named by sha1).
"""

import base64
import glob
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from flowtop.netlink import nlmsg
from flowtop.netlink.uapi import NLMSG_DONE, NLMSG_ERROR
from flowtop.recording import iter_dumps, read_header

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
MAX_LEN = 4096
DONE = nlmsg.pack(NLMSG_DONE, 2, 0, struct.pack("=i", 0))

# selector bytes of fuzz_route.py
ROUTE_ADDR, ROUTE_LINK, ROUTE_GET, SOCKDIAG, ROUTE_DUMP, RULE_DUMP, NEIGH_DUMP = range(7)


def messages(data):
    return [data[b - nlmsg.NLMSGHDR.size:nlmsg.align(e)]
            for _t, _f, _s, _p, b, e in nlmsg.iter_messages(data)]


def recorded_dumps():
    for path in sorted(glob.glob(os.path.join(FIXTURES, "*.rec"))):
        with open(path, "rb") as f:
            read_header(f)
            for _when, data in iter_dumps(f):
                yield data


def ctnetlink_seeds():
    seeds = []
    for data in recorded_dumps():
        msgs = messages(data)
        if len(data) <= MAX_LEN:
            seeds.append(data)
        for m in msgs:
            seeds.append(m + DONE)
        run = b""
        for m in msgs:
            if len(run) + len(m) + len(DONE) > MAX_LEN:
                seeds.append(run + DONE)
                run = b""
            run += m
        if run:
            seeds.append(run)
    seeds += [
        DONE,
        nlmsg.pack(NLMSG_ERROR, 0, 0, struct.pack("=i", -105) + b"\0" * 16),
        nlmsg.pack(0x100, 2, 0, b"\x02\x00\x00\x00"),
        b"",
    ]
    return seeds


def route_seeds():
    seeds = []
    for sel, name in ((ROUTE_ADDR, "route-addr.bin"), (ROUTE_LINK, "route-link.bin"),
                      (ROUTE_GET, "route-get.bin"), (ROUTE_DUMP, "route-routes.bin"),
                      (RULE_DUMP, "route-rules.bin"), (NEIGH_DUMP, "route-neigh.bin")):
        with open(os.path.join(FIXTURES, name), "rb") as f:
            data = f.read()
        if len(data) < MAX_LEN:
            seeds.append(bytes((sel,)) + data)
        for m in messages(data):
            seeds.append(bytes((sel,)) + m + DONE)
    with open(os.path.join(FIXTURES, "sockdiag-dump.json")) as f:
        fixture = json.load(f)
    for d in fixture["dumps"]:
        raw = base64.b64decode(d["data"])
        seeds.append(bytes((SOCKDIAG, d["proto"])) + raw[:MAX_LEN])
        for m in messages(raw)[:4]:
            seeds.append(bytes((SOCKDIAG, d["proto"])) + m + DONE)
    return seeds


def write(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    names = set()
    for seed in seeds:
        name = hashlib.sha1(seed).hexdigest()
        if name in names:
            continue
        names.add(name)
        with open(os.path.join(directory, name), "wb") as f:
            f.write(seed)
    return len(names)


def main(argv):
    out = argv[1] if len(argv) > 1 else os.path.join(HERE, "corpus")
    n = write(os.path.join(out, "ctnetlink"), ctnetlink_seeds())
    m = write(os.path.join(out, "route"), route_seeds())
    print("wrote %d ctnetlink seeds and %d route/sockdiag seeds under %s" % (n, m, out))


if __name__ == "__main__":
    main(sys.argv)

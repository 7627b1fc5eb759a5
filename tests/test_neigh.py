"""The neighbour table decoder (flowtop.netlink.route RTM_GETNEIGH) against
a recorded dump, with ``ip -j neigh show nud all`` of the same namespace as
the truth (tests/record_neigh.py), and malformed input."""

import json
import os

import pytest

from flowtop.netlink import neigh, route
from flowtop.netlink import uapi as u
from flowtop.netlink.errors import DecodeError, NetlinkError

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
NUD_NAMES = {"INCOMPLETE": u.NUD_INCOMPLETE, "REACHABLE": u.NUD_REACHABLE,
             "STALE": u.NUD_STALE, "DELAY": u.NUD_DELAY, "PROBE": u.NUD_PROBE,
             "FAILED": u.NUD_FAILED, "NOARP": u.NUD_NOARP, "PERMANENT": u.NUD_PERMANENT}


def load():
    with open(os.path.join(FIXTURES, "route-neigh.bin"), "rb") as f:
        data = f.read()
    with open(os.path.join(FIXTURES, "route-neigh.json")) as f:
        meta = json.load(f)
    return data, meta


def test_neighbours_match_ip_neigh():
    data, meta = load()
    got = neigh.decode_neighbours(data, meta["seq"], meta["port"])
    want = [(n["dst"], n.get("lladdr"), sum(NUD_NAMES[s] for s in n["state"]))
            for n in meta["ip"]]
    assert sorted((n.address, n.lladdr, n.state) for n in got) == sorted(want)
    assert {n.family for n in got} == {u.AF_INET, u.AF_INET6}


def test_lladdr_of_keeps_only_resolved_devices():
    data, meta = load()
    table = neigh.lladdr_of(neigh.decode_neighbours(data))
    assert table["10.66.0.50"] == table["fd66::50"] == "02:00:00:00:00:50"
    assert table["10.66.0.51"] == "02:00:00:00:00:51"           # stale still names it
    assert "10.66.0.99" not in table                            # never answered
    assert not any(a.startswith("ff02:") for a in table)        # multicast mappings
    real = [n["lladdr"] for n in meta["ip"] if n["dst"] == "10.66.0.2"]
    assert table["10.66.0.2"] == real[0] == table["fd66::2"]


def test_dump_request_is_a_dump_of_ndmsg():
    msg = neigh.neigh_dump_request(5, u.AF_INET)
    length, mtype, flags, seq, _pid = route.nlmsg.NLMSGHDR.unpack_from(msg, 0)
    assert (length, mtype, seq) == (16 + u.NDMSG_LEN, u.RTM_GETNEIGH, 5)
    assert flags == u.NLM_F_REQUEST | u.NLM_F_DUMP
    assert msg[16] == u.AF_INET


def test_every_truncated_dump_raises_decode_error():
    data, _ = load()
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            neigh.decode_neighbours(data[:cut])


def test_byte_mutations_raise_only_decode_or_netlink_errors():
    data, _ = load()
    for i in range(len(data)):
        for value in (0, 0xFF, data[i] ^ 0x55):
            bad = data[:i] + bytes((value,)) + data[i + 1:]
            try:
                for n in neigh.decode_neighbours(bad):
                    assert isinstance(n.address, str)
            except (DecodeError, NetlinkError):
                pass


def test_short_ndmsg_and_odd_attributes():
    with pytest.raises(DecodeError):
        neigh.decode_neigh(b"\x02" * 8, 0, 8)
    hdr = neigh.NDMSG.pack(u.AF_INET, 0, 0, 3, u.NUD_REACHABLE, 0, 0)
    body = hdr + route.pack_attr(u.NDA_DST, b"\x0a\x00\x00\x01") + route.pack_attr(99, b"xx")
    assert neigh.decode_neigh(body, 0, len(body)).address == "10.0.0.1"     # unknown skipped
    with pytest.raises(DecodeError):                                         # 3-byte address
        bad = hdr + route.pack_attr(u.NDA_DST, b"\x0a\x00\x00")
        neigh.decode_neigh(bad, 0, len(bad))
    bridge = neigh.NDMSG.pack(7, 0, 0, 3, 0, 0, 0)                           # AF_BRIDGE FDB
    assert neigh.decode_neigh(bridge, 0, len(bridge)) is None

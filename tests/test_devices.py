"""Devices on a router (flowtop.enrich.devices): lease and ethers parsers
over untrusted text, which flows belong to which device, and totals that
keep the bytes of closed flows."""

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from flowtop.enrich import devices as dv
from flowtop.text import sanitize

DNSMASQ = """\
1733420000 aa:bb:cc:dd:ee:01 192.168.1.10 phone 01:aa:bb:cc:dd:ee:01
1733420000 AA-BB-CC-DD-EE-02 192.168.1.11 * *
duid 00:01:00:01:2c:aa:bb:cc:00:11:22:33:44:55
1733420000 1234567 fd00::10 phone 00:01:00:01
garbage line
1733420000 zz:bb:cc:dd:ee:03 192.168.1.300 bad *
"""
ODHCPD = """\
# br-lan 000100012caabbcc 1a2b3c4d laptop 1733420000 7f 128 fd00::20/128 fd00::21/128
# br-lan aabbccddee05 ipv4 tv 1733420000 5 32 192.168.1.20/32
fd00::22\tprinter.lan\tprinter
# short line
"""
ETHERS = """\
# comment
aa:bb:cc:dd:ee:02 desktop
aa:bb:cc:dd:ee:06 192.168.1.30
not-a-mac name
"""


def test_dnsmasq_leases_give_address_mac_and_name():
    got = dv.parse_dnsmasq(DNSMASQ)
    assert ("192.168.1.10", "aa:bb:cc:dd:ee:01", "phone") in got
    assert ("192.168.1.11", "aa:bb:cc:dd:ee:02", None) in got       # "*": no name
    assert ("fd00::10", None, "phone") in got                       # IAID is no MAC
    assert len(got) == 3


def test_odhcpd_state_and_hosts_lines():
    got = dv.parse_odhcpd(ODHCPD)
    assert ("fd00::20", None, "laptop") in got and ("fd00::21", None, "laptop") in got
    assert ("192.168.1.20", "aa:bb:cc:dd:ee:05", "tv") in got
    assert ("fd00::22", None, "printer") in got
    assert len(got) == 4


def test_ethers_maps_macs_to_names_or_addresses():
    names, addrs = dv.parse_ethers(ETHERS)
    assert names == {"aa:bb:cc:dd:ee:02": "desktop"}
    assert addrs == {"aa:bb:cc:dd:ee:06": "192.168.1.30"}


def test_hostile_names_are_sanitized_and_bounded():
    evil = "1 aa:bb:cc:dd:ee:01 10.0.0.1 \x1b[2Jevil\u202e%s *\n" % ("x" * 500)
    (addr, mac, name), = dv.parse_dnsmasq(evil)
    assert name == sanitize(name) and "\x1b" not in name and "\u202e" not in name
    assert len(name) <= dv.NAME_LEN


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=300))
def test_parsers_never_crash_on_any_text(text):
    for parse in (dv.parse_dnsmasq, dv.parse_odhcpd):
        for addr, mac, name in parse(text):
            assert isinstance(addr, str) and (name is None or name == sanitize(name))
    dv.parse_ethers(text)


def test_unreadable_or_binary_files_read_as_text(tmp_path):
    p = tmp_path / "leases"
    p.write_bytes(b"\xff\xfe\x00" * 1000)
    assert isinstance(dv.read_text(str(p)), str)
    assert dv.read_text(str(tmp_path / "missing")) == ""
    assert dv.read_text(str(tmp_path)) == ""                          # a directory


def flow(key, src, dst, rsrc=None, bo=0, br=0, po=0, pr=0, closed=0, rates=(None, None)):
    e = SimpleNamespace(key=key, src=src, dst=dst, reply_src=rsrc or dst, reply_dst=src,
                        bytes_orig=bo, bytes_reply=br, packets_orig=po, packets_reply=pr)
    return SimpleNamespace(entry=e, key=key, closed=closed, rate_orig=rates[0],
                           rate_reply=rates[1])


def make(tmp_path, neigh=None, host=None):
    leases = tmp_path / "dhcp.leases"
    leases.write_text(DNSMASQ)
    ethers = tmp_path / "ethers"
    ethers.write_text(ETHERS)
    return dv.Devices(lambda: neigh or {}, lambda a: a == "192.168.1.1", host,
                      dnsmasq=(str(leases),), odhcpd=(), ethers=(str(ethers),))


def test_totals_add_deltas_and_keep_closed_flows(tmp_path):
    d = make(tmp_path, {"192.168.1.10": "aa:bb:cc:dd:ee:01", "fd00::10": "aa:bb:cc:dd:ee:01"})
    d.refresh()
    a = flow(b"a", "192.168.1.10", "8.8.8.8", bo=100, br=1000, po=1, pr=2)
    b = flow(b"b", "fd00::10", "2001:db8::1", bo=50, br=5, po=1, pr=1)
    d.account([a, b])
    a2 = flow(b"a", "192.168.1.10", "8.8.8.8", bo=300, br=1500, po=3, pr=4)
    d.account([a2, b])
    d.account([b])                             # a is gone from the table: its bytes stay
    (dev,) = d.snapshot()
    assert dev.key == ("mac", "aa:bb:cc:dd:ee:01")   # v4 and v6 addresses: one device
    assert (dev.bytes_tx, dev.bytes_rx, dev.pkts_tx, dev.pkts_rx) == (350, 1505, 4, 5)
    assert d.name_of(dev) == "phone" and dev.flows == 2


def test_the_flows_a_shrunk_table_dropped_are_forgotten_whatever_their_number(tmp_path):
    """A flood's flow keys, kept after the table emptied, pinned Python's
    arenas: past twice the table plus 64 the seen flows are pruned."""
    d = make(tmp_path, {"192.168.1.10": "aa:bb:cc:dd:ee:01"})
    d.refresh()
    flood = [flow(b"f%d" % i, "192.168.1.10", "8.8.%d.%d" % (i >> 8, i & 255), bo=i)
             for i in range(600)]
    d.account(flood)
    left = flood[:5]
    d.account(left)
    assert len(d._flows) <= 2 * len(left) + 64
    assert d.snapshot()[0].flows == 600


def test_a_counter_that_goes_down_is_a_new_flow_counted_whole(tmp_path):
    d = make(tmp_path, {"192.168.1.10": "aa:bb:cc:dd:ee:01"})
    d.refresh()
    d.account([flow(b"a", "192.168.1.10", "8.8.8.8", bo=1000)])
    d.account([flow(b"a", "192.168.1.10", "8.8.8.8", bo=10)])
    assert d.snapshot()[0].bytes_tx == 1010


def test_a_port_forward_counts_for_its_lan_target_with_directions_swapped(tmp_path):
    d = make(tmp_path, {"192.168.1.11": "aa:bb:cc:dd:ee:02"})
    d.refresh()
    # 8.8.4.4 -> router:8080, DNATed to 192.168.1.11:80
    d.account([flow(b"f", "8.8.4.4", "203.0.113.1", rsrc="192.168.1.11", bo=40, br=900)])
    (dev,) = d.snapshot()
    assert (dev.bytes_tx, dev.bytes_rx) == (900, 40)
    assert d.name_of(dev) == "desktop"                                 # from /etc/ethers


def test_a_device_new_to_the_lan_counts_from_its_first_flow_though_the_table_was_just_read(
        tmp_path):
    neigh = {"203.0.113.2": "aa:bb:cc:dd:ee:99"}     # the far end is a neighbour too
    d = make(tmp_path, neigh)
    d.refresh()
    neigh["192.168.1.20"] = "aa:bb:cc:dd:ee:20"      # it joins; the next refresh is 5 s off
    d.account([flow(b"n", "192.168.1.20", "203.0.113.2", bo=70, br=7)])
    (dev,) = d.snapshot()
    assert dev.key == ("mac", "aa:bb:cc:dd:ee:20")
    assert (dev.bytes_tx, dev.bytes_rx) == (70, 7)


def test_this_hosts_addresses_and_strangers_are_no_devices(tmp_path):
    d = make(tmp_path, {"192.168.1.1": "aa:aa:aa:aa:aa:aa"})
    d.refresh()
    d.account([flow(b"x", "192.168.1.1", "8.8.8.8", bo=5),
               flow(b"y", "8.8.8.8", "192.168.1.1", bo=5)])
    assert d.snapshot() == []


def test_without_a_name_reverse_dns_then_the_address(tmp_path):
    d = make(tmp_path, {"192.168.1.50": "aa:bb:cc:dd:ee:50", "192.168.1.51": "aa:bb:cc:dd:ee:51"},
             host=lambda a: "nas.lan" if a == "192.168.1.50" else None)
    d.refresh()
    d.account([flow(b"1", "192.168.1.50", "8.8.8.8"), flow(b"2", "192.168.1.51", "8.8.8.8")])
    assert sorted(d.name_of(x) for x in d.snapshot()) == ["192.168.1.51", "nas.lan"]


def test_idle_rows_already_counted_are_skipped(tmp_path):
    class Idle(SimpleNamespace):
        pass
    d = make(tmp_path, {"192.168.1.10": "aa:bb:cc:dd:ee:01"})
    d.refresh()
    r = flow(b"a", "192.168.1.10", "8.8.8.8", bo=100)
    d.account([r])
    idle = Idle(**vars(r))
    idle.entry = SimpleNamespace(**dict(vars(r.entry), bytes_orig=999))   # would add if read
    d.account([idle], Idle)
    assert d.snapshot()[0].bytes_tx == 100


def test_group_rows_carry_totals_and_current_rates(tmp_path):
    from flowtop.views.aggregate import Group
    d = make(tmp_path, {"192.168.1.10": "aa:bb:cc:dd:ee:01"})
    d.refresh()
    rows = [flow(b"a", "192.168.1.10", "8.8.8.8", bo=100, br=200, rates=(10.0, 20.0))]
    d.account(rows)
    d.account([])                              # closed and gone
    (g,) = dv.group_rows(rows, d, Group)
    assert (g.label, g.flows, g.bytes_tx, g.bytes_rx, g.rate_tx, g.rate_rx) == \
        ("phone", 1, 100, 200, 10.0, 20.0)
    (g,) = dv.group_rows([], d, Group)         # no open flow: the totals remain
    assert (g.flows, g.bytes_tx) == (0, 100)


def test_files_are_reread_only_when_they_change(tmp_path):
    d = make(tmp_path, {"192.168.1.10": "aa:bb:cc:dd:ee:01"})
    d.refresh()
    assert d.leased["192.168.1.10"][1] == "phone"
    import os
    p = tmp_path / "dhcp.leases"
    p.write_text(DNSMASQ.replace("phone", "tablet"))
    os.utime(str(p), ns=(1, 10 ** 18))
    d.refresh(force=True)
    assert d.leased["192.168.1.10"][1] == "tablet"


def test_device_view_from_a_recording_with_a_leases_file():
    import io
    import json
    import os
    from flowtop import cli, main
    fx = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

    def run(*argv):
        out = io.StringIO()
        assert main.main(cli.parse(["--replay", os.path.join(fx, "ctnetlink-mixed.rec"), "-n", "--once",
                                   "--json"] + list(argv)), stdout=out, stderr=io.StringIO()) == 0
        return [json.loads(x) for x in out.getvalue().splitlines()]
    flows = run()
    got = {r["key"]: r for r in run("--view", "device", "--leases",
                                    os.path.join(fx, "leases-dnsmasq.leases"))}
    assert set(got) == {"sensor", "?[31mred?"}                    # the hostile name, defused
    mine = [f for f in flows if "10.9.0.1" in (f["src"], f["reply_src"])]
    assert got["sensor"]["flows"] == len(mine) and got["sensor"]["mac"] == "02:00:00:09:00:01"
    assert got["sensor"]["bytes_sent"] == sum(f["bytes_orig"] or 0 for f in mine)


def test_device_csv_has_a_mac_column_under_its_header():
    import csv
    import io
    import os
    from flowtop import cli, main
    fx = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    out = io.StringIO()
    assert main.main(cli.parse(["--replay", os.path.join(fx, "ctnetlink-mixed.rec"), "-n", "--once", "--csv",
                               "--view", "device", "--leases",
                               os.path.join(fx, "leases-dnsmasq.leases")]),
                    stdout=out, stderr=io.StringIO()) == 0
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0][-1] == "mac" and all(len(r) == len(rows[0]) for r in rows)
    assert {r[2]: r[-1] for r in rows[1:]}["sensor"] == "02:00:00:09:00:01"


def test_the_device_field_of_the_filter_language(tmp_path):
    from flowtop.views.filterexpr import compile
    from flowtop.views.filterfields import RowFields
    d = make(tmp_path, {"192.168.1.10": "aa:bb:cc:dd:ee:01"})
    d.refresh()
    r = flow(b"a", "192.168.1.10", "8.8.8.8", bo=1)
    d.account([r])
    from flowtop.enrich.bundle import Enrichment
    enrich = Enrichment(None)
    enrich.devices = d
    acc = RowFields(enrich, device=enrich.device_of).of(r)
    assert compile("device=phone")(acc) and compile("device=AA:BB:CC:DD:EE:01")(acc)
    assert compile("device=192.168.1.0/24")(acc)
    assert not compile("device=tv")(acc)
    other = RowFields(enrich, device=enrich.device_of).of(flow(b"b", "8.8.8.8", "1.1.1.1"))
    assert not compile("device~*")(other) and compile("device!=phone")(other)


def test_group_rows_ask_only_the_flows_with_an_end_a_device_may_have(tmp_path):
    # Tab to Devices at 100k flows: two device_key calls a flow; now only flows with an
    # end in the neighbour table, the leases or /etc/ethers are asked (and the same ones
    # counted: a port forward's reply source too)
    from flowtop.views.aggregate import Group
    d = make(tmp_path, {"192.168.1.10": "aa:bb:cc:dd:ee:01"})
    d.refresh()
    rows = [flow(b"a", "192.168.1.10", "8.8.8.8", rates=(10.0, 20.0))]
    rows += [flow(b"f%d" % i, "10.0.%d.1" % i, "9.9.9.%d" % i) for i in range(50)]
    forward = flow(b"p", "8.8.4.4", "203.0.113.1", rates=(1.0, 2.0))
    forward.entry.reply_src = "192.168.1.10"         # DNAT to the device
    rows.append(forward)
    d.account(rows)
    asked = []
    key = d.device_key
    d.device_key = lambda addr: asked.append(addr) or key(addr)
    (g,) = dv.group_rows(rows, d, Group)
    assert (g.flows, g.rate_tx, g.rate_rx) == (2, 12.0, 21.0)
    assert len(asked) <= 4, asked
    empty = dv.Devices(lambda: {}, lambda a: False, None, dnsmasq=(), odhcpd=(), ethers=())
    empty.refresh()                                  # a server: no neighbours, no leases
    empty.device_key = lambda addr: asked.append(addr)
    assert dv.group_rows(rows, empty, Group) == [] and len(asked) <= 4

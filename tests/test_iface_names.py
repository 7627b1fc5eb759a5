"""--in-iface/--out-iface against the interfaces this host has (no kernel:
the link list is injected)."""

import io

from flowtop import cli, main
from flowtop.enrich.bundle import Enrichment
from flowtop.enrich.iface import Interfaces, unmatched


class Services:
    def of_flow(self, sport, dport, proto, numeric=False):
        return str(dport)


def interfaces(links):
    return Interfaces(route_sock_factory=None, links=lambda: links, owners=dict)


def test_patterns_that_match_no_interface_are_named():
    names = interfaces({1: "lo", 2: "eth0", 5: "vlan10"}).names()
    assert names == ["eth0", "lo", "vlan10"]
    assert unmatched(["eth0", "vlan+", "+", "eth1", "wan+", None], names) == ["eth1", "wan+"]


def test_an_unknown_interface_is_warned_about_once_per_option():
    said = []
    enrich = Enrichment(Services(), ifaces=interfaces({1: "lo", 2: "eth0"}))
    main.warn_unknown_ifaces(cli.parse(["--in-iface", "eht0", "--out-iface", "eth+"]), enrich,
                            said.append)
    assert said == ["no interface matches --in-iface eht0 (this host has: eth0, lo)"]
    said.clear()
    main.warn_unknown_ifaces(cli.parse(["--in-iface", "\x1b[2Jx"]), enrich, said.append)
    assert said and "\x1b" not in said[0]
    # unreadable links: nothing to compare with, no false alarm
    said.clear()
    main.warn_unknown_ifaces(cli.parse(["--in-iface", "eth0"]),
                            Enrichment(Services(), ifaces=interfaces({})), said.append)
    assert said == []

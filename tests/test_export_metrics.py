"""The Prometheus exposition without a kernel: format, escaping, bounded
labels, and totals that keep a flow's bytes after it ends."""

from flowtop.export import metrics as m
from flowtop.model import Flow
from flowtop.netlink import uapi as u


class Row:
    closed = 0

    def __init__(self, entry):
        self.entry = entry


def flow(key, bo, br, **kw):
    base = dict(family=u.AF_INET, l4proto=u.IPPROTO_TCP, src="10.0.0.1", dst="192.0.2.1",
                sport=1, dport=443, state=u.TCP_CONNTRACK_ESTABLISHED, id=1, key=key,
                bytes_orig=bo, packets_orig=1, bytes_reply=br, packets_reply=1)
    base.update(kw)
    return Flow(**base)


class Geo:
    def __init__(self, country):
        self.country = country


class Enrich:
    """What the sink asks of an Enrichment."""
    geo = True

    def proc(self, e):
        return type("P", (), {"name": 'we"ird\nname'})()

    def ifaces_of(self, e):
        return ("eth0", "wan0")

    def remote_of(self, e):
        return e.dst

    def geo_of(self, addr):
        return Geo("DE")


def value(text, line_start):
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_bytes_stay_in_the_totals_after_the_flow_ends():
    s = m.MetricsSink(Enrich())
    a = flow(b"a", 100, 1000)
    s.dump([Row(a)], 0, 0, False, True)
    s.event("destroy", flow(b"a", 150, 1500), 1, 1)
    s.dump([], 2, 2, False, True)
    text = s.text()
    assert value(text, 'flowtop_country_bytes_total{country="DE",direction="reply"}') == 1500
    assert value(text, 'flowtop_interface_bytes_total{direction="rx",interface="eth0"}') == 150
    assert value(text, "flowtop_conntrack_entries") == 0


def test_label_values_are_escaped():
    s = m.MetricsSink(Enrich())
    s.dump([Row(flow(b"a", 1, 1))], 0, 0, False, True)
    assert 'process="we\\"ird\\nname"' in s.text()


def test_label_sets_are_bounded():
    s = m.MetricsSink(None)
    for i in range(m.MAX_LABELS + 50):
        s.by_process.slot("p%d" % i)[0] += 1
    assert len(s.by_process) == m.MAX_LABELS + 1 and s.by_process["other"][0] == 50

"""Redaction end to end: ``--redact-local``/``--redact-remote`` in every
``--once`` output and view, and the live view's ``x``/``X`` keys in tmux
(flows, details pane, Hosts view, the ``/`` filter), in an ``ftest-i11a*``
namespace with its own DNS server (tests/dnsutil.py) and the GeoIP
fixture databases, so every identifying field is there to leak.
"""

import json
import os
import re
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests import dnsutil  # noqa: E402
from tests import enrichutil as eu  # noqa: E402
from tests.nsutil import Netns, kernel_ready  # noqa: E402

_READY, _WHY = kernel_ready("tmux")
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

ME, LONDON, FAR = "10.9.0.1", "81.2.69.5", "10.9.0.2"
NAMES = {ME: "me.example.test", LONDON: "london.example.test", FAR: "far.example.test"}
# What identifies each side (the test GeoIP databases: 81.2.69.5 is London,
# AS20712 Andrews & Arnold Ltd).
LOCAL_SECRETS = (ME, NAMES[ME])
REMOTE_SECRETS = (LONDON, NAMES[LONDON], "London", "20712", "Andrews", FAR, NAMES[FAR])


def _world():
    ns = Netns("i11ared", sysctls={"net.netfilter.nf_conntrack_acct": 1,
                                   "net.netfilter.nf_conntrack_timestamp": 1})
    return ns, dnsutil.NetnsEtc(ns.name)


def _setup(ns):
    dnsutil.start_in(ns, NAMES)
    ns.run("ip", "addr", "add", ME + "/32", "dev", "lo")       # this host's own address
    for dst, dport in ((LONDON, 4431), (FAR, 4432)):
        ns.run("conntrack", "-I", "-p", "tcp", "-s", ME, "-d", dst, "--sport", "40000",
               "--dport", str(dport), "--state", "ESTABLISHED", "-t", "500")


def _outputs(ns, *flags):
    """Every --once output and view, as {what: text}."""
    out = {}
    for view in ("flows", "process", "host", "country"):
        for fmt in ((), ("--json",), ("--csv",)):
            args = ("--once", "--view", view, "-s", "--wide") + fmt + eu.GEO_ARGS + flags
            out["%s %s" % (view, fmt[0] if fmt else "text")] = eu.run(ns, *args).stdout
    return out


def _leaks(text, secrets):
    """The secrets ``text`` holds; a number only as a whole number (an ASN's
    five digits turned up inside a nanosecond time or an id in CI)."""
    return [s for s in secrets
            if (re.search(r"(?<![0-9])%s(?![0-9])" % s, text) if s.isdigit() else s in text)]


def test_redaction_holds_in_every_once_output_and_view():
    pytest.importorskip("maxminddb")
    ns, etc = _world()
    with etc, ns:
        _setup(ns)
        plain = _outputs(ns)
        local = _outputs(ns, "--redact-local")
        remote = _outputs(ns, "--redact-remote")
    # the control: unredacted, the flows and Hosts outputs do carry them
    every = set(LOCAL_SECRETS + REMOTE_SECRETS) - {"Andrews"}    # records carry no org
    for what in ("flows --json", "flows --csv"):
        assert every == set(_leaks(plain[what], every)), what
    assert NAMES[LONDON] in plain["host text"] and NAMES[LONDON] in plain["host --json"]
    for what, text in local.items():
        assert not _leaks(text, LOCAL_SECRETS), (what, text)
    for what, text in remote.items():
        assert not _leaks(text, REMOTE_SECRETS), (what, text)
    # tags instead: one per address within a run (a new run, new tags)
    recs = [json.loads(ln) for ln in remote["flows --json"].splitlines()]
    ours = [r for r in recs if r["dport"] in (4431, 4432)]
    assert len({r["dst"] for r in ours}) == 2 and all(
        r["dst"].startswith("remote#") and r["dst"] == r["reply_src"] for r in ours), ours
    assert {r["dst_country"] for r in recs if r["dport"] == 4431} == {"GB"}   # country kept
    for what in ("flows text", "flows --csv", "host text", "host --json", "host --csv"):
        assert remote[what].count("remote#") >= 2, (what, remote[what])
        assert local[what].count("local#") >= 1, (what, local[what])

def test_live_view_x_and_X_hide_in_rows_details_hosts_and_filter(tmp_path):
    pytest.importorskip("maxminddb")
    ns, etc = _world()
    with etc, ns:
        _setup(ns)
        with eu.LiveView(ns, tmp_path / "pane", "i11ared", "-s", "-t", "1",
                         *eu.GEO_ARGS) as lv:
            tm = lv.tm

            def body(ls):
                return "\n".join(ls[:-1])
            # unredacted first: every secret is on screen (the test can see a leak)
            lv.wait(lambda ls: "%s:4431" % NAMES[LONDON] in body(ls) and NAMES[ME] in body(ls)
                    and "GB London" in body(ls), 15, "names and the city")

            tm.send("X")
            lines = lv.wait(lambda ls: not _leaks(body(ls), REMOTE_SECRETS)
                            and "remote#" in body(ls), 10, "the remote ends hidden")
            assert NAMES[ME] in body(lines)                     # local still shown

            # '/' cannot find a flow by its hidden address or name, the port still finds it
            for needle in ("81.2.69", "london", "far.example"):
                tm.send("/")
                tm.wait_for(lambda ls: ls[-1].startswith("filter: _"), 10, "the prompt")
                tm.type(needle)
                tm.wait_for(lambda ls: "shown 0" in ls[1] and "no flows match" in body(ls),
                            10, "no flow matching %r" % needle)
                tm.send("Escape")
                tm.wait_for(lambda ls: "/" + needle not in ls[1], 10, "the filter cleared")

            screen = lv.details_of(":4431")
            details = "\n".join(screen)
            assert not _leaks(details, REMOTE_SECRETS), details
            d = eu.detail_fields(screen)
            assert d["destination"].startswith("remote#") and " GB " in d["destination"], d
            assert d["original"].startswith(NAMES[ME] + ":40000 -> remote#"), d

            tm.send("Tab")
            tm.send("Tab")
            lines = lv.wait(lambda ls: "[Hosts]" in ls[1] and "remote#" in body(ls), 10,
                            "the Hosts view")
            assert not _leaks(body(lines), REMOTE_SECRETS), lines

            tm.send("x")
            from flowtop.views.aggregate import VIEWS
            for _ in range(len(VIEWS) - VIEWS.index("host")):     # round to Flows
                tm.send("Tab")
            lines = lv.wait(lambda ls: "[Flows]" in ls[1] and "local#" in body(ls), 10,
                            "the local end hidden")
            assert not _leaks(body(lines), LOCAL_SECRETS + REMOTE_SECRETS), lines

            tm.send("x")
            tm.send("X")
            lv.wait(lambda ls: "%s:4431" % NAMES[LONDON] in body(ls) and NAMES[ME] in body(ls),
                    10, "the names back")
            eu.assert_screen_clean(lv, "the live view")
            assert lv.quit() == 0, lv.stderr()

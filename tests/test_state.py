"""The view state: built from the frozen Options alone; what decides the rows."""

import pytest

from flowtop import cli

from tests.viewutil import state_of


@pytest.mark.parametrize("spec,value", [("800", 800), ("10k", 1e4), ("1.5M", 1.5e6),
                                        ("2Mi", 2 * 1024 ** 2), ("10kB/s", 1e4)])
def test_threshold_units(spec, value):
    assert cli.rate_value(spec) == value


def test_the_view_state_is_built_from_the_options_alone():
    st = state_of("--sort", "+port", "-s", "-b", "--units", "iec", "--age", "seconds",
                  "--view", "host", "-T", "-6", "--active", "--threshold", "10k")
    assert (st.sort, st.reverse, st.show_src, st.bits, st.units, st.age, st.view) == \
        ("port", True, True, True, "iec", "seconds", "host")
    assert st.hidden_groups == set("UDIS") and st.hidden_families == {2}
    assert st.active_only and st.threshold == 1e4 / 8 and not st.loopback   # -b: bits/s
    assert st.show_rates and not state_of("--once").show_rates


def test_ascending_is_the_sorts_natural_order_flipped_by_reverse():
    assert not state_of("--sort", "rate").ascending()
    assert state_of("--sort", "+rate").ascending()
    assert state_of("--sort", "port").ascending()
    assert not state_of("--sort", "+port").ascending()


def test_which_changes_with_the_filters_not_with_the_looks_or_the_order():
    st = state_of()
    which = st.which()
    st.bits, st.units, st.wide, st.show_src, st.show_id = True, "raw", True, True, True
    st.age, st.interval, st.paused, st.sort, st.reverse = "none", 5.0, True, "bytes", True
    assert st.which() == which
    for field, value in (("filter", "ssh"), ("loopback", True), ("active_only", True),
                         ("threshold", 1e3), ("view", "host"), ("by_name", True),
                         ("redact_local", True), ("numeric_port", True)):
        other = state_of()
        setattr(other, field, value)
        assert other.which() != which, field
    grouped = state_of()
    grouped.group = ("host", ("10.0.0.1",), "a")
    relabelled = state_of()
    relabelled.group = ("host", ("10.0.0.1",), "host#1")    # x after Enter: same flows
    assert grouped.which() == relabelled.which() != which


def test_cli_reads_the_sort_names_without_importing_any_view_module():
    import subprocess
    import sys
    code = ("import sys, flowtop.cli; flowtop.cli.parse(['--sort', 'dst']); "
            "print(sorted(m for m in sys.modules if m.startswith("
            "('flowtop.views.', 'flowtop.table', 'flowtop.netlink'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out        # (values holds them: 0.3 M instructions a start)


def test_the_protocol_groups_and_families_are_the_kernel_numbers_of_uapi():
    from flowtop.netlink import uapi as u
    from flowtop.views.state import FAMILIES, GROUPS
    assert GROUPS == {
        "T": {u.IPPROTO_TCP}, "U": {u.IPPROTO_UDP, u.IPPROTO_UDPLITE}, "D": {u.IPPROTO_DCCP},
        "I": {u.IPPROTO_ICMP, u.IPPROTO_ICMPV6}, "S": {u.IPPROTO_SCTP}}
    assert FAMILIES == {"4": u.AF_INET, "6": u.AF_INET6}

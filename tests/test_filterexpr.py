"""The filter language (flowtop.views.filterexpr): parsing, mistakes with
their column, and what each field and operator matches, over dict accessors."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowtop.views.filterexpr import FIELDS, FilterError, compile

FLOW = {
    "proc": "firefox", "pid": 4242, "user": "alice",
    "src": "192.168.1.5", "dst": "10.1.2.3", "sport": 50000, "dport": 443,
    "port": (50000, 443), "proto": ("tcp", "6"), "state": "ESTABLISHED",
    "host": ("192.168.1.5", "10.1.2.3", "www.example.com"),
    "country": ("DE", "Germany"), "asn": 3320, "iface": ("br-lan", "wan"),
    "in": "br-lan", "out": "wan", "mark": 0x12, "zone": 0,
    "status": ("SEEN_REPLY", "ASSURED", "CONFIRMED"), "device": ("laptop", "aa:bb:cc:dd:ee:ff"),
    "bytes": 5e6, "packets": 4000.0, "rate": 2.5e6, "age": 5400.0,
    "text": "firefox/4242 tcp established https 10.1.2.3:443",
}


def match(text, acc=FLOW):
    return compile(text)(acc)


@pytest.mark.parametrize("text", [
    "proc=firefox", "proc=FireFox", "proc~fire", "proc~f*x", "proc!=chrome", "proc!~chrom",
    "pid=4242", "pid>4000", "pid<=4242", "user=alice",
    "src=192.168.1.0/24", "dst=10.0.0.0/8", "dst=10.1.2.3", "dst!=10.1.2.4", "dst~10.1.*",
    "host=www.example.com", "host~example", "host=10.0.0.0/8", "host~*.example.com",
    "sport>1024", "dport=443", "port=443", "port=50000", "port<1000",
    "proto=tcp", "proto=6", "proto!=udp", "state=established", "state~estab",
    "country=de", "country=germany", "asn=3320", "asn=AS3320",
    "iface=wan", "iface=br-lan", "in=br-lan", "out=wan", "in~br-*",
    "mark=18", "mark=0x12", "mark=0x10/0xf0", "mark!=0", "zone=0",
    "status=assured", "status!=offload", "status~seen",
    "device=laptop", "device=AA:BB:CC:DD:EE:FF",
    "bytes>1M", "bytes<5.1MB", "packets>=4k", "rate>1M", "rate>2MiB/s", "rate<3MB/s",
    "age>1h", "age<1h31m", "age>=90m", "age<2d", "age>5399s",
])
def test_each_field_and_operator_matches_the_flow(text):
    assert match(text), text


@pytest.mark.parametrize("text", [
    "proc=fire", "proc~chrome", "proc!=firefox", "pid=1", "user=root",
    "src=10.0.0.0/8", "dst=11.0.0.0/8", "dst=fe80::/10", "dst~192.*",
    "host=example.com", "sport<1024", "dport=80", "port=80", "port>60000",
    "proto=udp", "proto!=6", "state=time_wait", "country=us", "asn=1",
    "iface=eth0", "in=wan", "mark=0x20/0xf0", "zone=1",
    "status=offload", "status!=assured", "device=phone",
    "bytes>1G", "rate>3M", "rate<2.5M", "age<1h", "age>2d",
])
def test_each_field_and_operator_rejects_what_differs(text):
    assert not match(text), text


def test_and_or_not_and_parentheses_combine_as_usual():
    assert match("proc=firefox and dport=443")
    assert not match("proc=firefox and dport=80")
    assert match("proc=chrome or dport=443")
    assert match("not proto=udp")
    assert not match("not (proto=udp or dport=443)")
    assert match("not (proto=udp or state=time_wait) and rate>1M and age<2h")
    assert match("PROC=firefox AND (dport=80 OR dport=443)")


def test_or_binds_looser_than_and():
    # a or (b and c): true through a alone
    assert match("dport=443 or proto=udp and proc=chrome")
    # (a or b) and c: false through c
    assert not match("(dport=443 or proto=udp) and proc=chrome")


def test_words_side_by_side_are_anded():
    assert match("proc=firefox dport=443")
    assert not match("proc=firefox dport=80")
    assert match("proto=tcp https")
    assert not match("proto=tcp ssh")


def test_plain_words_keep_the_substring_match_of_the_whole_text():
    f = compile("tcp established")
    assert f.plain == "tcp established"
    assert f({"text": "firefox tcp established https"})
    assert not f({"text": "established tcp"})
    assert compile("  Fire  ").plain == "fire"
    assert not compile("firefox")({"text": None})


def test_a_quoted_value_may_hold_blanks_and_operators():
    acc = {"proc": "web content", "text": "a=b c"}
    assert match('proc="web content"', acc)
    assert match("proc~'b con'", acc)
    assert match('"a=b"', acc)                # a quoted word is a plain search


def test_an_empty_filter_matches_everything():
    assert compile("")({}) and compile("   ")({})


def test_absent_fields_match_nothing_but_not_equal():
    empty = {}
    assert not match("proc=firefox", empty)
    assert not match("country~d", empty)
    assert not match("rate>0", empty)
    assert match("proc!=firefox", empty)
    assert match("country!~d", empty)
    assert not match("port=443", {"port": (None, None)})


def test_a_field_of_several_values_is_not_equal_only_when_none_is():
    assert not match("port!=443")
    assert match("port!=80")
    assert not match("iface!=wan")


def test_ipv6_networks_and_addresses():
    acc = {"dst": "2001:db8::1", "src": "fe80::1%eth0"}
    assert match("dst=2001:db8::/32", acc)
    assert match("dst=2001:db8::1", acc)
    assert not match("dst=2001:db9::/32", acc)
    assert not match("dst=10.0.0.0/8", acc)       # another family never matches
    assert match("src=fe80::/10", acc)            # a zone index is not part of the address
    assert match("dst=::/0", acc) and not match("dst=0.0.0.0/0", acc)


def test_a_network_with_host_bits_set_matches_its_network():
    assert match("dst=10.1.2.200/24")


def test_terms_lists_the_top_level_comparisons_for_pushdown():
    f = compile("mark=0x10/0xf0 and (proc=a or proc=b) and zone=3 status=assured")
    assert [t[0] for t in f.terms] == ["mark", "zone", "status"]
    assert compile("mark=1 or zone=2").terms == ()
    assert compile("not mark=1").terms == ()
    assert f.fields == {"mark", "proc", "zone", "status"}


@pytest.mark.parametrize("text,column,words", [
    ("prot=tcp", 1, "unknown field 'prot'"),
    ("dport=443 and prot=tcp", 15, "unknown field"),
    ("dst=", 5, "needs a value"),
    ("dst=1.2.3", 5, "not an address"),
    ("dst=10.0.0.0/33", 5, "not an address"),
    ("dst=10.0.0.0/x", 5, "not an address"),
    ("dst<10", 5, "not a number"),
    ("proc>a", 6, "not a number"),
    ("dport=https", 7, "wants a number"),
    ("rate>fast", 6, "not a size"),
    ("rate>1i", 6, "'i' needs a prefix"),
    ("age>1x", 5, "not a duration"),
    ("age>", 5, "needs a value"),
    ("(proc=a", 8, "'(' at column 1 is not closed"),
    ("proc=a)", 7, "')' without '('"),
    (")", 1, "')' without '('"),
    ("and x", 1, "'and' needs something"),
    ("x or", 5, "ends too soon"),
    ("not", 4, "ends too soon"),
    ("=5", 1, "needs a field"),
    ("proc=a =b", 8, "unexpected '='"),
    ('proc="x', 6, "unclosed quote"),
    ("a ! b", 3, "'!' only in"),
    ('"proc"=x', 1, "unknown field"),
])
def test_a_mistake_names_its_column(text, column, words):
    with pytest.raises(FilterError) as err:
        compile(text)
    assert err.value.column == column, str(err.value)
    assert words in err.value.message
    assert str(err.value).startswith("column %d: " % column)
    assert "\n" not in str(err.value)


def test_the_pointer_is_one_line():
    with pytest.raises(FilterError) as err:
        compile("dport=443 and\nprot=x")
    assert "\n" not in err.value.pointer("x")


# --- properties ---------------------------------------------------------------------

_ALPHABET = st.sampled_from(list("proc=dst~ and or not()<>!'\"10./:*aAxyz\t -"))


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.text(_ALPHABET, max_size=40))
def test_any_text_compiles_or_raises_filter_error_with_a_column_inside_it(text):
    try:
        f = compile(text)
    except FilterError as exc:
        assert 1 <= exc.column <= len(text) + 1
        return
    f(FLOW)
    f({})


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.ip_addresses(), st.ip_addresses(), st.integers(0, 128))
def test_cidr_match_agrees_with_ipaddress(addr, net_addr, plen):
    plen = min(plen, net_addr.max_prefixlen)
    net = ipaddress.ip_network("%s/%d" % (net_addr, plen), strict=False)
    expect = addr.version == net.version and addr in net
    assert match("dst=%s/%d" % (net_addr, plen), {"dst": str(addr)}) == expect


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1))
def test_masked_mark_agrees_with_the_kernels_rule(mark, value, mask):
    # ctnetlink's dump filter: (ct->mark & mask) == filter->mark.val (value & mask)
    assert match("mark=%#x/%#x" % (value, mask), {"mark": mark}) == \
        ((mark & mask) == (value & mask))


_NAMES = sorted(FIELDS)
_LEAF = st.builds(lambda f, v: "%s=%s" % (f, v), st.sampled_from(["proc", "proto", "user"]),
                  st.sampled_from(["firefox", "tcp", "alice", "x"]))


def _expr(children):
    return st.one_of(
        st.builds(lambda a, b: "(%s and %s)" % (a, b), children, children),
        st.builds(lambda a, b: "(%s or %s)" % (a, b), children, children),
        st.builds(lambda a: "not %s" % a, children))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.recursive(_LEAF, _expr, max_leaves=8))
def test_boolean_structure_agrees_with_python(text):
    acc = {"proc": "firefox", "proto": ("tcp", "6"), "user": "alice"}
    py = text.replace("proc=firefox", "True").replace("proto=tcp", "True") \
        .replace("user=alice", "True")
    for leaf in ("proc=", "proto=", "user="):
        while leaf in py:
            i = py.index(leaf)
            j = i + len(leaf)
            while j < len(py) and py[j] not in " )":
                j += 1
            py = py[:i] + "False" + py[j:]
    assert compile(text)(acc) == eval(py)

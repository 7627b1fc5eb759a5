"""What of a filter expression the kernel can do itself (ctnetlink's dump
filter): the top-level ``and``ed ``=`` comparisons of mark, zone, status,
protocol, ports and single addresses.  The kernel then sends only those
flows (fewer bytes to decode: see bench/filter.py); the whole filter still
runs on what comes, so a kernel that ignores an attribute costs nothing
but the saving."""


from ..model import PROTO_NUMBERS, STATUS_BITS
from ..netlink.ctfilter import DumpFilter
from ..netlink.uapi import AF_INET, AF_INET6, AF_UNSPEC

_STATUS = {name.lower(): 1 << bit for bit, name in STATUS_BITS}
_FAMILY = {4: AF_INET, 6: AF_INET6}
_FULL = {4: (1 << 32) - 1, 6: (1 << 128) - 1}


def pushdown(flt, family=AF_UNSPEC):
    """A DumpFilter for the compiled filter ``flt`` (or None when nothing
    can be pushed).  ``family``: the one family the dump asks for, if any
    (an address of the other one is then left to the filter after)."""
    if flt is None:
        return None
    f = {}
    status = 0
    for name, op, value in flt.terms:
        if op != "=":
            continue
        if name == "mark" and "mark" not in f:
            if isinstance(value, tuple):
                f["mark"], f["mark_mask"] = value[1] & value[2], value[2]
            elif 0 <= value <= 0xFFFFFFFF:
                f["mark"] = value
        elif name == "zone" and "zone" not in f and 0 < value <= 0xFFFF:
            f["zone"] = value
        elif name == "status" and value in _STATUS:
            status |= _STATUS[value]
        elif name == "proto" and "proto" not in f:
            num = PROTO_NUMBERS.get(value) if not value.isdigit() else int(value)
            if num is not None and 0 <= num <= 255:
                f["proto"] = num
        elif name in ("sport", "dport") and name not in f and 0 <= value <= 0xFFFF:
            f[name] = value
        elif name in ("src", "dst") and name not in f and isinstance(value, tuple):
            _n, ver, net, mask = value
            fam = _FAMILY[ver]
            # IPv6 stays here: 6.18's ctnetlink_filter_match_tuple drops the
            # flows whose address equals the filter's (!ipv6_addr_cmp)
            if ver == 6 or mask != _FULL[ver] or (family not in (AF_UNSPEC, fam)) \
                    or f.get("family", fam) != fam:
                continue
            f["family"] = fam
            f[name] = net.to_bytes(4 if ver == 4 else 16, "big")
    if status:
        f["status"] = f["status_mask"] = status
    if "proto" not in f:                # the kernel reads ports only with a protocol
        f.pop("sport", None)
        f.pop("dport", None)
    return DumpFilter(**f) if f else None


def for_options(opts):
    """The DumpFilter of ``--filter`` (with -4/-6), or None."""
    from .filterfields import compiled
    fams = {"ipv4": AF_INET, "ipv6": AF_INET6}
    family = fams[next(iter(opts.families))] if len(opts.families) == 1 else AF_UNSPEC
    return pushdown(compiled(opts.filter)[0], family)

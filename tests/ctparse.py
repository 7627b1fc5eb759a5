"""Parse ``conntrack -L -o extended,id`` output: the independent truth the
tests compare flowtop against."""

import re

_KV = re.compile(r"(\w[\w-]*)=(\S+)")
_TUPLE_KEYS = {"src", "dst", "sport", "dport", "type", "code", "id", "packets", "bytes",
               "srckey", "dstkey"}


def parse_line(line):
    """One entry -> dict with orig/reply sub-dicts, flags, and the rest."""
    words = line.split()
    if len(words) < 5 or words[0] not in ("ipv4", "ipv6"):
        return None
    e = {"family": words[0], "proto": words[2], "l4proto": int(words[3]),
         "timeout": int(words[4]), "flags": set(), "state": None}
    rest = words[5:]
    if rest and "=" not in rest[0] and not rest[0].startswith("["):
        e["state"] = rest[0]
        rest = rest[1:]
    side = "orig"
    e["orig"], e["reply"] = {}, {}
    for w in rest:
        if w.startswith("["):
            e["flags"].add(w.strip("[]"))
            continue
        m = _KV.fullmatch(w)
        if not m:
            continue
        k, v = m.group(1), m.group(2)
        if k == "src" and "src" in e["orig"]:
            side = "reply"
        elif k == "use":
            side = "tail"      # the conntrack id follows use=
        if side != "tail" and k in _TUPLE_KEYS:
            e[side][k] = v if k in ("src", "dst") else int(v, 0)
        elif side == "tail" and k == "id":
            e["ctid"] = int(v)
        else:
            e[k] = v
    for k in ("mark", "zone", "use"):
        if k in e:
            e[k] = int(e[k])
    e.setdefault("mark", 0)
    e.setdefault("zone", 0)
    return e


def parse(text):
    return [e for e in (parse_line(l) for l in text.splitlines()) if e]

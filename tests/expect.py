"""Compare flowtop's JSON records with ``conntrack -L -o extended,id``.

Shared by the fixture tests (recorded dumps) and the kernel tests (live
tables): both check the same things the same way.
"""


def flow_key(family, l4proto, orig, zone):
    """Identity of a flow in both worlds: tuple fields + zone, never the id."""
    return (family, l4proto, orig.get("src"), orig.get("dst"), orig.get("sport"),
            orig.get("dport"), orig.get("type"), orig.get("code"), orig.get("id"),
            orig.get("srckey"), orig.get("dstkey"), zone)


def record_key(r):
    orig = {"src": r["src"], "dst": r["dst"], "sport": r["sport"], "dport": r["dport"],
            "type": r["icmp_type"], "code": r["icmp_code"], "id": r["icmp_id"]}
    if r["proto"] == "gre":
        orig["srckey"], orig["dstkey"] = r["gre_reply_key"], r["gre_key"]
    if r["proto"] == "dccp" and r["sport"] is None:
        orig["sport"] = orig["dport"] = 0      # generic tracking: conntrack prints 0
    return flow_key(r["family"], r["l4proto"], orig, r["zone"])


def entry_key(e):
    return flow_key(e["family"], e["l4proto"], e["orig"], e["zone"])


def mismatches(records, entries, timeout_slack=2):
    """List of human-readable differences; empty when everything matches."""
    problems = []
    recs = {}
    for r in records:
        recs.setdefault(record_key(r), []).append(r)
    ents = {}
    for e in entries:
        ents.setdefault(entry_key(e), []).append(e)
    for k in sorted(set(recs) | set(ents), key=repr):
        if len(recs.get(k, ())) != len(ents.get(k, ())):
            problems.append("flow %r: flowtop has %d, conntrack %d"
                            % (k, len(recs.get(k, ())), len(ents.get(k, ()))))
            continue
        for r, e in zip(recs[k], ents[k]):
            problems.extend("flow %r: %s" % (k, p) for p in compare(r, e, timeout_slack))
    return problems


def compare(r, e, timeout_slack=2):
    out = []

    def check(what, mine, theirs):
        if mine != theirs:
            out.append("%s: flowtop %r, conntrack %r" % (what, mine, theirs))

    check("proto", r["proto"], e["proto"] if e["proto"] != "unknown" else str(e["l4proto"]))
    check("state", r["state"], e["state"])
    check("id", r["id"], e["ctid"])
    check("mark", r["mark"], e["mark"])
    check("zone", r["zone"], e["zone"])
    check("helper", r.get("helper"), e.get("helper"))
    rep = e["reply"]
    check("reply_src", r["reply_src"], rep.get("src"))
    check("reply_dst", r["reply_dst"], rep.get("dst"))
    if r["proto"] in ("tcp", "udp", "udplite", "sctp"):
        check("reply_sport", r["reply_sport"], rep.get("sport"))
        check("reply_dport", r["reply_dport"], rep.get("dport"))
    if r["proto"] == "dccp":
        check("dccp ports", (r["sport"], r["dport"]), (None, None) if e["orig"].get("sport") == 0
              else (e["orig"].get("sport"), e["orig"].get("dport")))
    if r["proto"] == "gre":
        check("gre_key", r["gre_key"], e["orig"].get("dstkey"))
        check("gre_reply_key", r["gre_reply_key"], rep.get("dstkey"))
        check("gre ports", (r["sport"], r["dport"]), (None, None))
    if r["proto"] in ("icmp", "icmpv6"):
        check("icmp", (r["icmp_type"], r["icmp_code"], r["icmp_id"]),
              (e["orig"].get("type"), e["orig"].get("code"), e["orig"].get("id")))
    for mine, side in (("orig", "orig"), ("reply", "reply")):
        check("packets_" + mine, r["packets_" + mine], e[side].get("packets"))
        check("bytes_" + mine, r["bytes_" + mine], e[side].get("bytes"))
    status = set(r["status"])
    check("UNREPLIED", "SEEN_REPLY" not in status, "UNREPLIED" in e["flags"])
    check("ASSURED", "ASSURED" in status, "ASSURED" in e["flags"])
    if abs(r["timeout"] - e["timeout"]) > timeout_slack:
        out.append("timeout: flowtop %r, conntrack %r" % (r["timeout"], e["timeout"]))
    return out

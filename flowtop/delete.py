"""``--delete EXPR [--dry-run]``: scripts delete the flows an expression
matches (``conntrack -D``): one dump, each match printed as deleted (or as
would-be with ``--dry-run``), a summary on stderr.  The deleting itself, and
the live view's delete key, are ``act``'s.
"""

from .act import Deleter, describe_flow, failure, outcome, refusal


def matcher(text, formatter, enrich, wall=0.0):
    """EXPR -> predicate over table rows (raises ValueError for a mistake),
    in the filter language of views.filterexpr (plain words: a substring of
    the shown columns, as the live view's ``/``)."""
    from .views.filterfields import RowFields, compiled
    flt, err = compiled(text)
    if err is not None:
        raise ValueError(str(err))
    if flt is None:
        return lambda row: True
    acc = RowFields(enrich, wall, formatter.search_text)
    return lambda row: flt(acc.of(row))


DNS_WAIT = 1.0


def run(source, opts, stdout, say, enrich):
    """``--delete EXPR``: one dump, the flows EXPR matches (in every
    family and protocol the options show), each printed as deleted (or as
    would-be with --dry-run), a summary on stderr.  A refusal raises
    sources.FlowtopError: one line, exit status 1."""
    import json
    from .sources import FlowtopError, one_table
    from .views.cells import Formatter
    from .views.export import full_record
    from .views.select import select
    from .views.state import ViewState
    if not opts.delete.strip():
        raise FlowtopError("--delete needs an expression (conntrack -F empties the whole table)")
    why = refusal(source.live)
    if why and not opts.dry_run:
        raise FlowtopError(why)
    state = ViewState(opts)
    state.view, state.group = "flows", None
    state.loopback = True                      # what the expression names, loopback too
    fmt = Formatter(state, enrich)
    try:
        keep = matcher(opts.delete, fmt, enrich)
    except ValueError as exc:
        raise FlowtopError("--delete: %s" % exc) from None
    snap = one_table(source, enrich)
    if snap is None:
        return
    now, flows, table = snap
    if enrich.dns is not None:
        enrich.dns.wait(sorted({a for f in flows for a in (f.src, f.dst)}), DNS_WAIT)
    hits = [r.entry for r in select(list(table), state, fmt, sort=False) if keep(r)]
    deleted = gone = 0
    if hits and not opts.dry_run:
        try:
            deleted, gone = Deleter(source.live).delete(hits)
        except OSError as exc:
            raise FlowtopError(failure(exc)) from None
    verb = "would delete" if opts.dry_run else "deleted"
    for e in hits:
        if opts.output == "json":
            r = {"action": "dry-run" if opts.dry_run else "delete"}
            r.update(full_record(e, now, enrich))
            stdout.write(json.dumps(r, separators=(",", ":")) + "\n")
        else:
            stdout.write("%s %s\n" % (verb, describe_flow(fmt, e)))
    stdout.flush()
    if opts.dry_run:
        say("%d flow%s match; --dry-run deleted nothing" % (len(hits), "" if len(hits) == 1
                                                            else "s"))
    else:
        say(outcome(deleted, gone) if hits else "no flow matches: nothing deleted")

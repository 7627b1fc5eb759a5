"""bench/deferred.py: what the JSON formatter's deferred record costs a flow, in-process.

    python3 bench/deferred.py [--batch 133] [--repeat 7]

With processes or interfaces, ``--once --json``'s generated formatter hands each flow
out as (head text, a 28-field Flow, service) so that the batch's answers can be made
first (``views.record.JsonTarget``, ``defer``).  This times, from locals as the
formatter has them, that item against one of only the keys the answers need and
against the head alone, each built and transposed as ``once.Preparer`` transposes a
batch (ns a flow, best of ``--repeat``).  No root, no kernel.
"""

import argparse
import os
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flowtop.model import Flow  # noqa: E402

_HEAD = ('{"time":%s,"id":%d,"src":"%s","dst":"%s","sport":%d,"dport":%d,'
         '"a":%d,"b":%d,"c":%d,"d":%d,"e":%d,"f":%d')
_ARGS = "(v0,v1,v2,v3,v4,v5,v6,v7,v8,v9,v10,v11)"
ITEMS = {
    "today: (head, 28-field Flow, service)":
        "(HEAD %% %s, new(cls, (%s,)), 'sv')" % (_ARGS, ",".join("v%d" % i for i in range(28))),
    "keys: (head, 9-field process key, 3-field ends key, service)":
        "(HEAD %% %s, (v1,v2,v3,v4,v5,v6,v7,v8,v9), (v2,v6,v20), 'sv')" % _ARGS,
    "no enrichment: (head, service)": "(HEAD %% %s, 'sv')" % _ARGS,
}


def batch_maker(expr, n):
    """A function that builds one batch of ``n`` items by ``expr``."""
    env = {"HEAD": _HEAD, "new": tuple.__new__, "cls": Flow}
    code = ("def make():\n" + "".join("    v%d = %d\n" % (i, i) for i in range(28))
            + "    out = []\n    for _ in range(%d):\n        out.append(%s)\n"
              "    return out\n" % (n, expr))
    exec(code, env)     # the formatter's shape: a generated function over locals
    return env["make"]


def per_flow(fn, n, repeat, number=200):
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number / n * 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=133, help="flows a batch (a datagram's)")
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args(argv)
    n = a.batch
    print("ns a flow, best of %d, batches of %d, Python %s" % (a.repeat, n, sys.version.split()[0]))
    for name, expr in ITEMS.items():
        make = batch_maker(expr, n)
        built = per_flow(make, n, a.repeat)
        moved = per_flow(lambda: list(zip(*make())), n, a.repeat)
        print("%-62s built %5.0f   built and zip(*batch) %5.0f" % (name, built, moved))
    flows = [tuple.__new__(Flow, tuple(range(28))) for _ in range(n)]
    keys = [tuple(range(9)) for _ in range(n)]
    print("zip(*flows), 28 columns %5.0f   zip(*keys), 9 columns %5.0f" % (
        per_flow(lambda: list(zip(*flows)), n, a.repeat, 500),
        per_flow(lambda: list(zip(*keys)), n, a.repeat, 500)))


if __name__ == "__main__":
    main()

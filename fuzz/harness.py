"""What both atheris harnesses share: the entry point around their ``check``.

Without FLOWTOP_FUZZ_KEEP_GOING a crash stops the run (atheris saves the
input).  With FLOWTOP_FUZZ_KEEP_GOING=DIR each new crash - by exception
type and the innermost flowtop frame - is saved once to DIR, printed with
its traceback, and the run goes on.
"""

import hashlib
import os
import sys
import traceback

KEEP_GOING = os.environ.get("FLOWTOP_FUZZ_KEEP_GOING")


def signature(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    last = ([f for f in tb if "flowtop" in f.filename] or tb)[-1]
    return "%s-%s-%d" % (type(exc).__name__, os.path.basename(last.filename), last.lineno)


def entry_point(check):
    """atheris' TestOneInput calling ``check(data)``."""
    seen = set()

    def test_one_input(data):
        try:
            check(data)
        except Exception as exc:           # the harness reports every kind
            if not KEEP_GOING:
                raise
            sig = signature(exc)
            if sig not in seen:
                seen.add(sig)
                os.makedirs(KEEP_GOING, exist_ok=True)
                name = "crash-%s-%s" % (sig, hashlib.sha1(data).hexdigest()[:12])
                with open(os.path.join(KEEP_GOING, name), "wb") as f:
                    f.write(data)
                sys.stderr.write("\n=== NEW CRASH %s (%d bytes) -> %s\n%s\n" % (
                    sig, len(data), name, "".join(traceback.format_exception(
                        type(exc), exc, exc.__traceback__))))
                sys.stderr.flush()
    return test_one_input


def main(check):
    import atheris
    atheris.Setup(sys.argv, entry_point(check))
    atheris.Fuzz()

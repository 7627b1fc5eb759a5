"""Run tests/bigendian/test_be_decode.py without pytest (the s390x chroot
has only python3): import it, call every test_* function, print one line
per test and a closing ``N passed, M failed`` line; exit 1 on a failure.

    python3 tests/bigendian/run.py [--require-big] [-k SUBSTRING]

``--require-big``: a skipped test counts as failed, and so does running on
a little-endian CPU (what scripts/ci-bigendian.sh asks for: there, a skip
would mean the big-endian run checked nothing).
"""

import os
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main(argv):
    require_big = "--require-big" in argv
    only = argv[argv.index("-k") + 1] if "-k" in argv else ""
    sys.path[:0] = [ROOT, HERE]
    import test_be_decode as module

    print("python %s on %s, byteorder %s" % (sys.version.split()[0], os.uname().machine,
                                             sys.byteorder), flush=True)
    tests = [(name, fn) for name, fn in vars(module).items()
             if name.startswith("test_") and callable(fn) and only in name]
    passed = failed = skipped = 0
    if require_big and sys.byteorder != "big":
        print("FAIL --require-big: this python is %s-endian" % sys.byteorder)
        failed += 1
    for name, fn in tests:
        start = time.monotonic()
        try:
            fn()
        except unittest.SkipTest as exc:
            outcome, detail = "SKIP", str(exc)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:                   # pytest's Skipped is a BaseException
            if type(exc).__name__ == "Skipped":        # pytest.skip, when pytest is there
                outcome, detail = "SKIP", str(exc)
            else:
                outcome, detail = "FAIL", traceback.format_exc()
        else:
            outcome, detail = "PASS", ""
        if outcome == "SKIP" and require_big:
            outcome = "FAIL"
        passed += outcome == "PASS"
        failed += outcome == "FAIL"
        skipped += outcome == "SKIP"
        print("%s %s (%.1fs)%s" % (outcome, name, time.monotonic() - start,
                                   ("\n" + detail.rstrip()) if detail else ""), flush=True)
    if not tests:
        print("FAIL no test matched")
        failed += 1
    print("%d passed, %d failed%s" % (passed, failed,
                                      ", %d skipped" % skipped if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

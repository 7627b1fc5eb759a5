#!/bin/sh
# The whole test suite, as CI runs it (README: "the test command").
#   1. the suite under Python 3.9 and 3.13 with OpenWrt python3-light's
#      missing modules blocked (skipped, with a line, where absent);
#   2. big-endian (scripts/ci-bigendian.sh, as root): the decoders on an
#      s390x CPU under qemu-user, then flowtop against a real big-endian
#      kernel in the s390x VM of scripts/vm/ (~5 min cold, ~1.5 min with
#      build/vm cached);
#   3. the main suite: python3 -m pytest (kernel tests need root).
# Every part runs; the exit status fails if any part failed.
cd "$(dirname "$0")/.." || exit 2
status=0
# tests/skipguard.py: as root, a kernel test that skips fails the run under CI
CI=${CI:-1}; export CI
if [ -f scripts/ci-pythons.sh ]; then
    bash scripts/ci-pythons.sh || status=1
fi
if [ -f scripts/ci-bigendian.sh ] && [ "$(id -u)" = 0 ]; then
    bash scripts/ci-bigendian.sh || status=1
fi
python3 -m pytest || status=1
exit $status

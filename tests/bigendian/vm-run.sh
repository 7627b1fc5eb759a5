#!/bin/sh
# The s390x VM's guest script (scripts/ci-bigendian.sh stages it as run.sh beside
# flowtop/ and tests/): flowtop against the real big-endian kernel, under pytest.
# Results: $FLOWTOP_VM_OUT/junit.xml; the exit status is pytest's.
echo "guest: $(python3 -c 'import sys; print(sys.version.split()[0], sys.byteorder)')"
modprobe nf_conntrack && sysctl -q -w net.netfilter.nf_conntrack_max=65536
exec python3 -m pytest -p no:cacheprovider -q -rfEs -o addopts= \
    --junitxml="$FLOWTOP_VM_OUT/junit.xml" \
    tests/bigendian/test_vm_kernel.py \
    tests/kernel/test_snapshot_kernel.py::test_sysctl_guard_once_restores \
    tests/kernel/test_snapshot_kernel.py::test_sysctl_guard_enables_and_restores_on_signal \
    tests/kernel/test_sysctl_kernel.py \
    tests/kernel/test_collector_kernel.py

#!/bin/sh
# Install what the test suite needs on Debian/Ubuntu (run as root):
# nftables and conntrack-tools for the kernel tests, tmux for the screen
# tests, curl and wget for the GeoIP download fallbacks, the big-endian rig
# (scripts/ci-bigendian.sh, scripts/vm/: qemu-user-static, qemu-system-misc for
# s390x, debootstrap, binfmt-support, e2fsprogs, cpio), and the package's
# `test` extra (pytest, hypothesis, maxminddb).
set -eu
cd "$(dirname "$0")/.."
need=""
command -v nft >/dev/null 2>&1 || need="$need nftables"
command -v conntrack >/dev/null 2>&1 || need="$need conntrack"
command -v tmux >/dev/null 2>&1 || need="$need tmux"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v ping >/dev/null 2>&1 || need="$need iputils-ping"
command -v setpriv >/dev/null 2>&1 || need="$need util-linux"
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v wget >/dev/null 2>&1 || need="$need wget"
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
[ -x /usr/bin/qemu-s390x-static ] || need="$need qemu-user-static"
command -v update-binfmts >/dev/null 2>&1 || need="$need binfmt-support"
command -v qemu-system-s390x >/dev/null 2>&1 || need="$need qemu-system-misc"
command -v mke2fs >/dev/null 2>&1 || need="$need e2fsprogs"
command -v cpio >/dev/null 2>&1 || need="$need cpio"
if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# setuptools walks the whole checkout for the editable install's metadata: a
# build/ left by an earlier run (the s390x chroot, 200+ MB) makes that take
# many minutes, so it waits beside the checkout meanwhile.
aside=""
if [ -d build ]; then
    aside="../.flowtop-build-aside.$$"
    mv build "$aside"
    trap 'mv "$aside" build' EXIT
fi
# Debian's own python3 refuses pip installs unless told (PEP 668); older pips ignore this.
PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check -e '.[test]'
if [ -n "$aside" ]; then
    mv "$aside" build
    trap - EXIT
fi

# Export tests (issue 14): the real collectors flowtop's IPFIX and metrics
# are checked against - nfdump's nfcapd, pmacct's nfacctd, libfixbuf's
# ipfixDump, Prometheus' promtool.  On a systemd host the packages start
# their own services (nfcapd on 2055, prometheus on 9090): the tests run
# theirs in their own namespaces on other ports.
need=""
command -v nfcapd >/dev/null 2>&1 || need="$need nfdump"
command -v nfacctd >/dev/null 2>&1 || need="$need pmacct"
command -v ipfixDump >/dev/null 2>&1 || need="$need libfixbuf-tools"
command -v promtool >/dev/null 2>&1 || need="$need prometheus"
if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $need >/dev/null
fi

# Devices view tests (issue 15): a real dnsmasq hands a lease to a LAN
# client namespace (udhcpc), and the view names the device from its file.
need=""
command -v dnsmasq >/dev/null 2>&1 || need="$need dnsmasq-base"
command -v udhcpc >/dev/null 2>&1 || need="$need udhcpc"
if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $need >/dev/null
fi

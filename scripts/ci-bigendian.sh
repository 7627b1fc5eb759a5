#!/usr/bin/env bash
# Big-endian CI, two parts:
#  1. flowtop's decoders on a big-endian CPU - Debian's s390x python3 under
#     qemu-user, in a chroot under build/ - over the recorded fixtures converted
#     to what a big-endian kernel would have sent (tests/beswap.py, tests/bigendian/);
#  2. flowtop against a real big-endian kernel: the s390x VM of scripts/vm/
#     (qemu-system-s390x, Debian's kernel) runs tests/bigendian/vm-run.sh: a mixed
#     table by real traffic and conntrack -I equal to conntrack -L field by field,
#     the sysctl guard, the events path (qemu-user cannot open netlink sockets).
#     FLOWTOP_BE_NO_VM=1 skips it (and says so).
#
#   bash scripts/ci-bigendian.sh          (as root: apt-get, binfmt_misc, chroot)
#
# What it touches outside the repo: apt packages qemu-user-static,
# debootstrap and binfmt-support when missing, and the qemu-s390x binfmt_misc
# registration.  Everything else lives in build/ (gitignored):
# build/s390x-root is the chroot, reused while its stamp matches and its
# python3 runs; it is built in about half a minute by debootstrap's first
# stage (--foreign: download and unpack, no s390x code runs) with python3's
# packages unpacked the same way - nothing is configured under emulation,
# python3 needs no maintainer script to run.  The tests run with
# tests/bigendian/run.py (no pytest in the chroot), whose closing line is
# "N passed, M failed"; a skip there counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)
suite=${FLOWTOP_BE_SUITE:-bookworm}
# the Debian mirror this machine's apt already uses
mirror=${FLOWTOP_BE_MIRROR:-$(python3 scripts/vm/aptmirror.py)}
root="$repo/build/s390x-root"
new="$root.new"
recipe="flowtop s390x chroot 1: debootstrap --foreign --variant=minbase $suite + python3 unpacked"
started=$(date +%s)

log() { printf 'ci-bigendian [%3ds] %s\n' "$(($(date +%s) - started))" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (apt-get, binfmt_misc, chroot)"

mounted_under() {   # is anything mounted at or below $1?
    awk -v p="$1" '$2 == p || index($2, p "/") == 1 {found = 1} END {exit !found}' /proc/mounts
}

cleanup() {
    if [ -d "$new" ] && ! mounted_under "$new"; then rm -rf "$new"; fi
}
trap cleanup EXIT

# --- 1. host tools --------------------------------------------------------------------
need=""
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
[ -x /usr/bin/qemu-s390x-static ] || need="$need qemu-user-static"
command -v qemu-system-s390x >/dev/null 2>&1 || need="$need qemu-system-misc"
command -v mke2fs >/dev/null 2>&1 || need="$need e2fsprogs"
command -v cpio >/dev/null 2>&1 || need="$need cpio"
command -v update-binfmts >/dev/null 2>&1 || need="$need binfmt-support"
if [ -n "$need" ]; then
    log "installing$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# --- 2. binfmt_misc: run s390x ELF files with qemu ------------------------------------
# Debian's qemu-user-static registers with the F flag (the interpreter is
# opened at registration), so the chroot needs no copy of qemu.  Where the
# service was not started (containers, policy-rc.d), enable it by hand;
# where binfmt_misc cannot be had at all, run qemu explicitly inside the
# chroot instead.
entry=/proc/sys/fs/binfmt_misc/qemu-s390x
binfmt_ok() {
    grep -qx enabled /proc/sys/fs/binfmt_misc/status 2>/dev/null &&
        grep -qx enabled "$entry" 2>/dev/null && grep -q '^flags:.*F' "$entry"
}
# FLOWTOP_BE_NO_BINFMT=1 takes the explicit way even where binfmt_misc works.
if [ -z "${FLOWTOP_BE_NO_BINFMT:-}" ] && ! binfmt_ok; then
    update-binfmts --enable qemu-s390x >/dev/null 2>&1 || true
fi
qemu=()
if [ -z "${FLOWTOP_BE_NO_BINFMT:-}" ] && binfmt_ok; then
    log "binfmt_misc: qemu-s390x registered ($(sed -n 's/^interpreter //p' "$entry"))"
else
    log "binfmt_misc unavailable: running qemu-s390x-static explicitly"
    qemu=(/usr/libexec/flowtop-qemu-s390x-static)
fi

chroot_bin=$(command -v chroot)
in_root() {   # run an s390x program of the chroot, clean environment: in_root PROGRAM ARGS...
    if [ ${#qemu[@]} -gt 0 ]; then
        cp /usr/bin/qemu-s390x-static "$root${qemu[0]}"
    fi
    env -i PATH=/usr/bin:/bin HOME=/ LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
        "$chroot_bin" "$root" "${qemu[@]}" "$@"
}

# --- 3. the chroot --------------------------------------------------------------------
valid() {
    [ -f "$root/.flowtop-chroot" ] && [ "$(cat "$root/.flowtop-chroot")" = "$recipe" ] &&
        [ -x "$root/usr/bin/python3" ] &&
        in_root /usr/bin/python3 -c \
            'import sys, json, base64, unittest, socket, struct; sys.exit(sys.byteorder != "big")' \
            >/dev/null 2>&1
}

if valid; then
    log "reusing $root"
else
    for d in "$root" "$new"; do
        ! mounted_under "$d" || die "something is mounted under $d: not deleting it"
    done
    mkdir -p "$repo/build"
    for attempt in 1 2 3; do     # the mirror may drop a download now and then
        rm -rf "$new"
        log "debootstrap $suite s390x (first stage) into build/s390x-root (attempt $attempt)"
        if debootstrap --arch=s390x --variant=minbase --foreign --include=python3 \
                "$suite" "$new" "$mirror" >"$repo/build/s390x-debootstrap.log" 2>&1; then
            break
        fi
        tail -n 5 "$repo/build/s390x-debootstrap.log" >&2
        [ "$attempt" -lt 3 ] || die "debootstrap failed (build/s390x-debootstrap.log)"
        sleep 10
    done
    # The second stage would configure every package under emulation (minutes);
    # python3 only needs its files: unpack the packages beyond the required set
    # the way the first stage unpacked those (keeping merged-/usr symlinks).
    log "unpacking python3 and its libraries"
    for pkg in $(cat "$new/debootstrap/base"); do
        deb=$(awk -v p="$pkg" '$1 == p {print $2}' "$new/debootstrap/debpaths")
        [ -n "$deb" ] && [ -f "$new$deb" ] || die "no .deb of $pkg"
        dpkg-deb --fsys-tarfile "$new$deb" | tar -C "$new" --keep-directory-symlink -xf -
    done
    rm -f "$new"/var/cache/apt/archives/*.deb
    echo "$recipe" >"$new/.flowtop-chroot"
    rm -rf "$root"
    mv "$new" "$root"
    valid || die "the new chroot's python3 does not run (or is not big-endian)"
fi

# --- 4. the code under test -----------------------------------------------------------
rm -rf "$root/flowtop-src"
mkdir -p "$root/flowtop-src"
tar -C "$repo" --exclude=__pycache__ -cf - flowtop tests/__init__.py tests/beswap.py \
    tests/ctparse.py tests/expect.py tests/fixtures tests/bigendian | tar -C "$root/flowtop-src" -xf -

order=$(in_root /usr/bin/python3 -c 'import sys; print(sys.byteorder)')
arch=$(in_root /usr/bin/python3 -c 'import os; print(os.uname().machine)')
log "chroot python3: sys.byteorder=$order, machine=$arch"
[ "$order" = big ] || die "the chroot's python3 is not big-endian"

# --- 5. the tests ---------------------------------------------------------------------
tested=$(date +%s)
out="$repo/build/s390x-test.log"
set +e
timeout 900 env -i PATH=/usr/bin:/bin HOME=/ LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
    "$chroot_bin" "$root" "${qemu[@]}" /usr/bin/python3 /flowtop-src/tests/bigendian/run.py \
    --require-big 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
log "tests: $(($(date +%s) - tested))s, exit $status; total $(($(date +%s) - started))s"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1 || true)
if [ -z "$summary" ]; then
    summary="0 passed, 1 failed"
    status=1
fi

# --- 6. the real big-endian kernel: the s390x VM --------------------------------------
vm_status=0
if [ -n "${FLOWTOP_BE_NO_VM:-}" ]; then
    log "s390x VM: skipped (FLOWTOP_BE_NO_VM is set)"
else
    vm_started=$(date +%s)
    payload="$repo/build/vm/s390x-payload"
    result="$repo/build/vm/s390x-result"
    rm -rf "$payload" "$result"
    mkdir -p "$payload"
    tar -C "$repo" --exclude=__pycache__ --exclude='*.pyc' -cf - flowtop tests pyproject.toml |
        tar -C "$payload" -xf -
    cp tests/bigendian/vm-run.sh "$payload/run.sh"
    python3 scripts/vm/vm.py build s390x || die "could not build the s390x VM"
    set +e
    python3 scripts/vm/vm.py run s390x "$payload" "$result" --timeout 1200 2>&1 |
        grep -v '^vm \[.*boot:'
    vm_status=${PIPESTATUS[0]}
    set -e
    log "s390x VM: $(($(date +%s) - vm_started))s, exit $vm_status"
    last=$(grep -E '(passed|failed|error)' "$result/console.log" 2>/dev/null | tail -n 1)
    echo "s390x kernel: ${last:-no result (exit $vm_status)}"
    rm -rf "$payload"
fi
echo "$summary"
[ "$status" = 0 ] && [ "$vm_status" = 0 ]

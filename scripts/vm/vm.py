#!/usr/bin/env python3
"""Full-system VMs of router-class CPUs, built from Debian's packages alone.

    python3 scripts/vm/vm.py build ARCH            (as root; ARCH: s390x, mipsel, armhf)
    python3 scripts/vm/vm.py run ARCH PAYLOAD_DIR OUT_DIR [--timeout S]

``build`` makes, under ``build/vm/ARCH/`` (gitignored, reused while its
stamp matches, rebuilt when missing):

- ``kernel/``: the arch's ``linux-image-*`` package unpacked (vmlinuz, modules);
- ``root.img``: an ext4 image (``mke2fs -d``, no mount) of a minbase rootfs made
  by ``debootstrap --foreign`` and its second stage under qemu-user-static,
  with python3, conntrack, nftables, iproute2, tmux and the kernel's modules;
- ``initrd.gz``: busybox-static and the virtio/ext4 modules, whose init mounts
  the disk whose virtio serial is ``root`` and hands over to ``/sbin/flowtop-vm-init``.

``run`` boots it (the root disk as a throw-away snapshot), with PAYLOAD_DIR as a
tar on a second disk; the guest runs ``sh run.sh`` there (stdout and stderr go
to the serial console too), writes ``$FLOWTOP_VM_OUT`` (plus ``status`` and
``console.log``) as a tar on a third disk, and powers off.  The host unpacks
that tar into OUT_DIR.  Exit status: the guest script's, 124 on timeout.

Nothing is cached outside the repository.  Host needs: debootstrap,
qemu-user-static, binfmt-support, qemu-system-{misc,mips,arm}, e2fsprogs, cpio.

Cost on a 2-core machine shared with other jobs: a cold build 3-4 min per arch
(debootstrap ~30 s, the second stage under qemu-user ~2.5-3 min, the image
seconds); a boot to the guest script ~5 s (s390x, mipsel).
"""

import argparse
import glob
import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, "build", "vm")
SUITE = os.environ.get("FLOWTOP_VM_SUITE", "bookworm")
sys.path.insert(0, HERE)
from aptmirror import apt_mirror  # noqa: E402  (the mirror apt already uses here)

MIRROR = os.environ.get("FLOWTOP_VM_MIRROR") or apt_mirror()
PACKAGES = ["python3", "python3-pytest", "conntrack", "nftables", "iproute2", "tmux", "kmod",
            "procps", "iputils-ping"]


class Arch:
    def __init__(self, name, kernel_pkg, qemu, machine, console, blk, boot_modules, bus):
        self.name, self.kernel_pkg, self.qemu = name, kernel_pkg, qemu
        self.machine, self.console, self.blk = machine, console, blk
        self.boot_modules, self.bus = boot_modules, bus


ARCHES = {
    # big-endian, real ctnetlink; ~9x slower than an x86-64 core here
    "s390x": Arch("s390x", "linux-image-s390x", "qemu-system-s390x",
                  ["-M", "s390-ccw-virtio", "-m", "512"], "ttysclp0", "virtio-blk-ccw",
                  ["virtio_blk", "ext4", "crc32c_generic"], "ccw"),
    # 32-bit little-endian, 128 MB: the slowest router CPU (~50x slower for Python)
    "mipsel": Arch("mipsel", "linux-image-4kc-malta", "qemu-system-mipsel",
                   ["-M", "malta", "-m", "128", "-vga", "none"], "ttyS0", "virtio-blk-pci",
                   ["virtio_pci", "virtio_blk", "ext4", "crc32c_generic"], "pci"),
    "armhf": Arch("armhf", "linux-image-armmp-lpae", "qemu-system-arm",
                  ["-M", "virt", "-cpu", "cortex-a15", "-m", "128"], "ttyAMA0",
                  "virtio-blk-device", ["virtio_mmio", "virtio_blk", "ext4", "crc32c_generic"],
                  "mmio"),
}

# What a build is made of; a change here rebuilds the images.
RECIPE = "flowtop vm 3: %s %s minbase+%s; initrd busybox-static; ext4 -d" % (
    SUITE, MIRROR, ",".join(PACKAGES))

started = time.monotonic()


def log(*words):
    print("vm [%4ds] %s" % (time.monotonic() - started, " ".join(map(str, words))),
          file=sys.stderr, flush=True)


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def nice(cmd):
    return ["nice", "-n", "10"] + cmd


# -- Debian's package index, read without apt (no foreign arch on the host) -----------

def _index(arch_dir, arch):
    path = os.path.join(arch_dir, "Packages.xz")
    if not os.path.exists(path):
        url = "%s/dists/%s/main/binary-%s/Packages.xz" % (MIRROR, SUITE, arch)
        log("fetching", url)
        _download(url, path)
    out = {}
    with lzma.open(path, "rt", encoding="utf-8") as f:
        for stanza in f.read().split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z0-9-]+): (.*)$", stanza, re.M))
            if "Package" in fields:
                out[fields["Package"]] = fields
    return out


def _download(url, path):
    tmp = path + ".part"
    for attempt in range(3):
        try:
            with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
            os.replace(tmp, path)
            return
        except OSError as exc:
            log("download failed (%s), attempt %d" % (exc, attempt + 1))
            time.sleep(5)
    raise SystemExit("vm: cannot download %s" % url)


def fetch_deb(arch_dir, arch, name, fresh=False):
    """Download package ``name`` (or, for a meta-package, its first dependency's
    package when that is a linux-image) into arch_dir/debs; returns the path.
    A cached index that names a file the mirror no longer has is fetched again."""
    if fresh and os.path.exists(os.path.join(arch_dir, "Packages.xz")):
        os.unlink(os.path.join(arch_dir, "Packages.xz"))
    index = _index(arch_dir, arch)
    fields = index[name]
    dep = fields.get("Depends", "").split(",")[0].split()[0] if fields.get("Depends") else ""
    if name.startswith("linux-image-") and dep.startswith("linux-image-"):
        fields = index[dep]
    os.makedirs(os.path.join(arch_dir, "debs"), exist_ok=True)
    path = os.path.join(arch_dir, "debs", os.path.basename(fields["Filename"]))
    if not os.path.exists(path):
        log("fetching", fields["Filename"])
        try:
            _download(MIRROR + "/" + fields["Filename"], path)
        except SystemExit:
            if fresh:
                raise
            return fetch_deb(arch_dir, arch, name, fresh=True)
    with open(path, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != fields["SHA256"]:
            os.unlink(path)
            raise SystemExit("vm: %s: checksum differs from the index" % path)
    return path


# -- the build --------------------------------------------------------------------------

def _stamp(arch_dir):
    try:
        with open(os.path.join(arch_dir, "stamp")) as f:
            return f.read().strip()
    except OSError:
        return ""


def built(a):
    arch_dir = os.path.join(BUILD, a.name)
    return (_stamp(arch_dir) == RECIPE
            and all(os.path.exists(os.path.join(arch_dir, f))
                    for f in ("root.img", "initrd.gz", "vmlinuz")))


def _binfmt(a):
    qarch = {"armhf": "arm"}.get(a.name, a.name)
    entry = "/proc/sys/fs/binfmt_misc/qemu-" + qarch
    if not os.path.exists(entry):
        run(["update-binfmts", "--enable", "qemu-" + qarch], check=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(entry) as f:
        text = f.read()
    if "enabled" not in text or not re.search(r"^flags:.*F", text, re.M):
        raise SystemExit("vm: binfmt_misc qemu-%s is not usable: %s" % (qarch, text))


def _rootfs(a, arch_dir, kernel_dir, version):
    root = os.path.join(arch_dir, "root")
    if os.path.exists(root):
        shutil.rmtree(root)
    for attempt in range(3):      # the mirror drops a download now and then
        log("debootstrap --foreign %s %s (attempt %d)" % (SUITE, a.name, attempt + 1))
        r = run(nice(["debootstrap", "--arch=" + a.name, "--variant=minbase", "--foreign",
                      "--include=" + ",".join(PACKAGES), SUITE, root, MIRROR]),
                check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode == 0:
            break
        log(r.stderr.strip()[-500:])
        shutil.rmtree(root, ignore_errors=True)
        time.sleep(10)
    else:
        raise SystemExit("vm: debootstrap failed")
    log("debootstrap --second-stage under qemu-user")
    r = run(nice(["chroot", root, "/debootstrap/debootstrap", "--second-stage"]),
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        tail = ""
        for logf in glob.glob(os.path.join(root, "debootstrap", "debootstrap.log")):
            with open(logf, errors="replace") as f:
                tail = f.read()[-1500:]
        raise SystemExit("vm: second stage failed: %s\n%s" % (r.stderr[-500:], tail))
    # The kernel's modules, indexed by the guest's own depmod (the host may lack kmod).
    shutil.copytree(os.path.join(kernel_dir, "lib", "modules", version),
                    os.path.join(root, "lib", "modules", version), symlinks=True)
    run(nice(["chroot", root, "/sbin/depmod", version]))
    shutil.copy(os.path.join(HERE, "guest-init.sh"), os.path.join(root, "sbin", "flowtop-vm-init"))
    os.chmod(os.path.join(root, "sbin", "flowtop-vm-init"), 0o755)
    with open(os.path.join(root, "etc", "hostname"), "w") as f:
        f.write("flowtop-vm\n")
    for junk in glob.glob(os.path.join(root, "var", "cache", "apt", "*.bin")) + glob.glob(
            os.path.join(root, "var", "lib", "apt", "lists", "*_Packages")):
        os.unlink(junk)
    return root


def _modules_closure(root, version, wanted):
    """The .ko files (in load order) that load ``wanted``; builtins skipped."""
    moddir = os.path.join(root, "lib", "modules", version)
    deps = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[path] = rest.split()
    by_name = {re.sub(r"\.ko(\.[a-z]+)?$", "", os.path.basename(p)).replace("-", "_"): p
               for p in deps}
    order = []

    def add(path):
        for d in reversed(deps.get(path, [])):
            add(d)
        if path not in order:
            order.append(path)

    for name in wanted:
        if name in by_name:
            add(by_name[name])
    return [os.path.join(moddir, p) for p in order]


INITRD_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /mod/$m 2>/dev/null || echo "initrd: insmod $m failed"; done
root=""
i=0
while [ -z "$root" ] && [ $i -lt 100 ]; do
    for d in /sys/block/vd*; do
        [ "$(cat $d/serial 2>/dev/null)" = root ] && root=/dev/${d##*/}
    done
    [ -n "$root" ] || { sleep 0.1; i=$((i + 1)); }
done
[ -n "$root" ] || { echo "initrd: no disk with serial root"; ls /sys/block; sleep 2; poweroff -f; }
mkdir -p /newroot
mount -t ext4 -o rw,noatime "$root" /newroot || { echo "initrd: mount failed"; poweroff -f; }
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/flowtop-vm-init
"""


def _initrd(a, arch_dir, root, version):
    stage = os.path.join(arch_dir, "initrd")
    shutil.rmtree(stage, ignore_errors=True)
    for d in ("bin", "mod", "proc", "sys", "dev", "newroot"):
        os.makedirs(os.path.join(stage, d))
    bb = fetch_deb(arch_dir, a.name, "busybox-static")
    unpacked = os.path.join(arch_dir, "busybox")
    shutil.rmtree(unpacked, ignore_errors=True)
    run(["dpkg-deb", "-x", bb, unpacked])
    shutil.copy(os.path.join(unpacked, "bin", "busybox"), os.path.join(stage, "bin", "busybox"))
    names = []
    for path in _modules_closure(root, version, a.boot_modules):
        name = os.path.basename(path)
        dest = os.path.join(stage, "mod", re.sub(r"\.(xz|zst|gz)$", "", name))
        if name.endswith(".xz"):
            with lzma.open(path) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            shutil.copy(path, dest)
        names.append(os.path.basename(dest))
    log("initrd modules:", " ".join(names) or "(all built in)")
    with open(os.path.join(stage, "modules.order"), "w") as f:
        f.write("\n".join(names) + "\n")
    with open(os.path.join(stage, "init"), "w") as f:
        f.write(INITRD_INIT)
    os.chmod(os.path.join(stage, "init"), 0o755)
    files = run(["find", ".", "-mindepth", "1"], cwd=stage, stdout=subprocess.PIPE).stdout
    cpio = run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=stage, input=files,
               stdout=subprocess.PIPE).stdout
    with gzip.open(os.path.join(arch_dir, "initrd.gz"), "wb") as f:
        f.write(cpio)
    shutil.rmtree(stage)


def build(a, force=False):
    arch_dir = os.path.join(BUILD, a.name)
    if built(a) and not force:
        log("reusing", arch_dir)
        return arch_dir
    if os.geteuid() != 0:
        raise SystemExit("vm: building needs root (debootstrap, chroot)")
    os.makedirs(arch_dir, exist_ok=True)
    if os.path.exists(os.path.join(arch_dir, "stamp")):
        os.unlink(os.path.join(arch_dir, "stamp"))
    _binfmt(a)
    kdeb = fetch_deb(arch_dir, a.name, a.kernel_pkg)
    kernel_dir = os.path.join(arch_dir, "kernel")
    shutil.rmtree(kernel_dir, ignore_errors=True)
    run(["dpkg-deb", "-x", kdeb, kernel_dir])
    version = os.listdir(os.path.join(kernel_dir, "lib", "modules"))[0]
    image = sorted(glob.glob(os.path.join(kernel_dir, "boot", "vmlinu*")))[0]
    shutil.copy(image, os.path.join(arch_dir, "vmlinuz"))
    root = _rootfs(a, arch_dir, kernel_dir, version)
    _initrd(a, arch_dir, root, version)
    shutil.rmtree(kernel_dir)
    used = int(run(["du", "-sm", root], stdout=subprocess.PIPE, text=True).stdout.split()[0])
    size = used * 13 // 10 + 128
    log("root.img: %d MiB used, %d MiB image" % (used, size))
    img = os.path.join(arch_dir, "root.img")
    if os.path.exists(img):
        os.unlink(img)
    run(nice(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "flowtop-vm", "-d", root, img,
              "%dM" % size]))
    shutil.rmtree(root)
    with open(os.path.join(arch_dir, "stamp"), "w") as f:
        f.write(RECIPE + "\n")
    log("built", arch_dir)
    return arch_dir


# -- the run ----------------------------------------------------------------------------

def _disk(a, path, serial, index, snapshot=False):
    drive = "file=%s,format=raw,if=none,id=d%d%s" % (path, index, ",snapshot=on" if snapshot else "")
    dev = "%s,drive=d%d,serial=%s" % (a.blk, index, serial)
    if a.bus == "ccw":
        dev += ",devno=fe.0.%04x" % (index + 1)
    return ["-drive", drive, "-device", dev]


def boot(a, payload_dir, out_dir, timeout=1800, echo=True):
    """Boot ``a`` with payload_dir's run.sh; its results land in out_dir.
    Returns the guest script's exit status (124: timed out, 125: no result)."""
    arch_dir = build(a)
    work = os.path.join(arch_dir, "run-%d" % os.getpid())
    os.makedirs(work)
    try:
        payload = os.path.join(work, "payload.tar")
        with tarfile.open(payload, "w") as t:
            t.add(payload_dir, arcname=".", filter=lambda i: None if (
                "__pycache__" in i.name or i.name.endswith(".pyc")) else i)
        with open(payload, "ab") as f:      # a whole number of 512-byte sectors, at least 1 MiB
            f.truncate(max(1 << 20, -(-f.tell() // 512) * 512))
        out = os.path.join(work, "out.img")
        with open(out, "wb") as f:
            f.truncate(256 << 20)
        # FLOWTOP_VM_CPU: another -cpu for a side run (mipsel: qemu's 24Kf by default)
        cpu = ["-cpu", os.environ["FLOWTOP_VM_CPU"]] if os.environ.get("FLOWTOP_VM_CPU") else []
        cmd = [a.qemu] + a.machine + cpu + [
            "-smp", "1", "-nographic", "-no-reboot", "-net", "none",
            "-kernel", os.path.join(arch_dir, "vmlinuz"),
            "-initrd", os.path.join(arch_dir, "initrd.gz"),
            "-append", "console=%s panic=-1 quiet loglevel=3" % a.console,
        ] + _disk(a, os.path.join(arch_dir, "root.img"), "root", 0, snapshot=True) \
          + _disk(a, payload, "payload", 1) + _disk(a, out, "out", 2)
        log("boot:", " ".join(cmd))
        t0 = time.monotonic()
        console = open(os.path.join(work, "console.txt"), "wb")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        timed_out = False
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        while True:
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                timed_out = True
                p.kill()
                break
            if not sel.select(min(left, 5)):
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            console.write(chunk)
            if echo:
                sys.stderr.buffer.write(chunk)
                sys.stderr.flush()
        p.wait()
        console.close()
        log("guest ran %.0fs%s" % (time.monotonic() - t0, " (TIMED OUT)" if timed_out else ""))
        os.makedirs(out_dir, exist_ok=True)
        shutil.copy(os.path.join(work, "console.txt"), os.path.join(out_dir, "serial.txt"))
        try:
            with tarfile.open(out) as t:
                t.extractall(out_dir)
        except (tarfile.TarError, OSError) as exc:
            log("no results from the guest: %s" % exc)
            return 124 if timed_out else 125
        if timed_out:
            return 124
        try:
            with open(os.path.join(out_dir, "status")) as f:
                return int(f.read().strip() or 125)
        except (OSError, ValueError):
            return 125
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("arch", choices=sorted(ARCHES))
    b.add_argument("--force", action="store_true")
    r = sub.add_parser("run")
    r.add_argument("arch", choices=sorted(ARCHES))
    r.add_argument("payload")
    r.add_argument("out")
    r.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args(argv)
    a = ARCHES[args.arch]
    if args.cmd == "build":
        build(a, force=args.force)
        return 0
    return boot(a, args.payload, args.out, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())

#!/bin/sh
# PID 1 of a flowtop VM (scripts/vm/vm.py): mount the pseudo file systems, unpack
# the payload disk, run its run.sh (output to the serial console and to
# $FLOWTOP_VM_OUT/console.log), write $FLOWTOP_VM_OUT as a tar to the out disk,
# power off.  Disks are found by their virtio serial, not by their order.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH HOME=/root LANG=C.UTF-8 TERM=xterm
mount -t proc proc /proc
mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/netns
hostname flowtop-vm
ip link set lo up

disk() {
    for d in /sys/block/vd*; do
        if [ "$(cat "$d/serial" 2>/dev/null)" = "$1" ]; then echo "/dev/${d##*/}"; return; fi
    done
}

FLOWTOP_VM_OUT=/run/out
export FLOWTOP_VM_OUT
mkdir -p /run/payload "$FLOWTOP_VM_OUT"
echo "flowtop-vm: $(uname -m) $(uname -r), $(nproc) cpu, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)" >/dev/console
if tar -C /run/payload -xf "$(disk payload)" 2>/dev/console; then
    cd /run/payload || exit 1
    { sh ./run.sh; echo $? >"$FLOWTOP_VM_OUT/status"; } 2>&1 | tee "$FLOWTOP_VM_OUT/console.log" >/dev/console
else
    echo 125 >"$FLOWTOP_VM_OUT/status"
fi
echo "flowtop-vm: done, status $(cat "$FLOWTOP_VM_OUT/status")" >/dev/console
tar -C "$FLOWTOP_VM_OUT" -cf "$(disk out)" . 2>/dev/console
sync
echo o >/proc/sysrq-trigger
sleep 10

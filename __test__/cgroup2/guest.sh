#!/bin/sh
# The test VM's init after switch_root (the host's / read only, tmpfs on the writable places):
# a pure cgroup v2 host as systemd leaves one (cgroup2 alone at /sys/fs/cgroup, every
# controller enabled down to system.slice, the suite in a service's leaf cgroup), then the
# limits and lifecycle suites. Ends the VM with a status line that run.sh turns into its exit.
repo=$1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
status=99
finish() {
  echo "LONELY-CGROUP2-STATUS=$status"
  sync
  # -no-reboot makes the reboot end QEMU (poweroff -f needs ACPI, which microvm may lack).
  exec /bin/busybox reboot -f
}
trap finish EXIT
set -e
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
# The only cgroup hierarchy, with systemd's options.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
cg=/sys/fs/cgroup
enable() { for c in $(cat "$1/cgroup.controllers"); do echo "+$c" >"$1/cgroup.subtree_control"; done; }
enable "$cg"
mkdir "$cg/system.slice"
enable "$cg/system.slice"
# A leaf with processes (the suite's own), as a CI runner's service: the library has to move
# itself out before it can delegate controllers below it.
mkdir "$cg/system.slice/lonely-test.service"
echo $$ >"$cg/system.slice/lonely-test.service/cgroup.procs"
hostname lonely-cgroup2
ip link set lo up 2>/dev/null || true
echo "cgroup2: $(cat /proc/self/cgroup); root controllers: $(cat $cg/cgroup.subtree_control); /tmp: $(stat -f -c %T /tmp)"
echo "guest up after $(cut -d' ' -f1 /proc/uptime) s (kernel $(uname -r), $(nproc) CPUs, $(free -m | awk '/^Mem/ {print $2}') MiB)"
cd "$repo"
set +e
start=$(cut -d' ' -f1 /proc/uptime)
# The files (and ava options) run.sh put on the kernel command line, comma-separated.
node_modules/.bin/ava --no-color --timeout=10m $(sed -n 's/.*lonely.ava=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ') 2>&1
status=$?
echo "suite took $(awk -v s="$start" '{printf "%.1f", $1 - s}' /proc/uptime) s in the guest"

#!/usr/bin/env bash
# npm run test:cgroup2: boots a QEMU VM (TCG, no KVM needed) whose only cgroup hierarchy is
# cgroup v2, with this machine's / shared read only and this checkout at its own path, and runs
# the limits and lifecycle suites inside (or the ava arguments given). Exits with their status.
# Leaves nothing behind but the cache directory prepare.sh fills. LONELY_CGROUP2_KERNEL_LOG=
# (empty) shows the guest kernel's boot messages.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -gt 0 ] || set -- __test__/limits.spec.ts __test__/lifecycle.spec.ts
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 is missing: apt-get install qemu-system-x86" >&2; exit 1; }
ls "$repo"/*.node >/dev/null 2>&1 || { echo "build first: npm run build" >&2; exit 1; }
mapfile -t boot < <(bash "$here/prepare.sh")
# pc, not microvm: microvm has no HPET, and when TCG is too slow for the PIT calibration the
# kernel finds no TSC frequency and hangs at boot (1 boot in ~4 here). tsc=reliable then keeps
# the TSC as the clocksource (the HPET's emulated reads made node ~5x slower).
machine=${LONELY_CGROUP2_MACHINE:-pc}
if [ "$machine" = microvm ]; then
  bus=device machine_opts=(-machine microvm,rtc=on)
else
  bus=pci machine_opts=(-machine "$machine")
fi
log=$(mktemp /tmp/lonely-cgroup2.XXXXXX)
# The guest's /tmp and /var/tmp: a sparse ext4 image, deleted with the log when we exit.
disk=$(mktemp /var/tmp/lonely-cgroup2-disk.XXXXXX)
trap 'rm -f "$log" "$disk"' EXIT
truncate -s 16G "$disk"
mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$disk"
ava=$(IFS=,; echo "$*")
start=$(date +%s.%N)
status=0
# The guest's serial console is our stdout; the VM reboots (and -no-reboot ends QEMU) when done.
timeout --kill-after=10 "${LONELY_CGROUP2_TIMEOUT:-45m}" qemu-system-x86_64 \
  "${machine_opts[@]}" -accel tcg,thread=multi -cpu max -smp 2 -m "${LONELY_CGROUP2_MEMORY:-3G}" \
  -nodefaults -no-user-config -display none -serial stdio -no-reboot \
  -kernel "${boot[0]}" -initrd "${boot[1]}" \
  -append "console=ttyS0 ${LONELY_CGROUP2_KERNEL_LOG:-quiet loglevel=3} tsc=reliable panic=-1 cgroup_no_v1=all lonely.repo=$repo lonely.ava=$ava" \
  -fsdev local,id=root,path=/,readonly=on,security_model=none,multidevs=remap \
  -device "virtio-9p-$bus,fsdev=root,mount_tag=root" \
  -fsdev "local,id=repo,path=$repo,readonly=on,security_model=none,multidevs=remap" \
  -device "virtio-9p-$bus,fsdev=repo,mount_tag=repo" \
  -drive "file=$disk,format=raw,if=none,id=scratch,cache=unsafe" -device "virtio-blk-$bus,drive=scratch" \
  </dev/null 2>&1 | sed -u 's/\r$//' | tee "$log" || status=$?
echo "VM wall time: $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s"
line=$(grep -a '^LONELY-CGROUP2-STATUS=' "$log" | tail -n1 || true)
if [ -z "$line" ]; then
  echo "test:cgroup2: the VM ended without a status (qemu/timeout status $status)" >&2
  exit 1
fi
code=${line#LONELY-CGROUP2-STATUS=}
exit "${code%% *}"

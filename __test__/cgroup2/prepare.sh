#!/usr/bin/env bash
# Fetches a Debian kernel and builds the busybox initramfs that run.sh boots, in one cache
# directory (LONELY_CGROUP2_CACHE, /var/cache/lonely-cgroup2): nothing else on the host changes.
# Prints the kernel's and the initramfs's paths. Needs apt (apt-get download), busybox-static, cpio.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${LONELY_CGROUP2_CACHE:-/var/cache/lonely-cgroup2}
mkdir -p "$cache"
cd "$cache"

# The kernel linux-image-amd64 points at today; the newest .deb already here if apt is offline.
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1; }
pkg=$(kernel_pkg || true)
if [ -z "$pkg" ] && ! ls linux-image-*.deb >/dev/null 2>&1; then
  apt-get update -qq || true # a fresh machine without package lists
  pkg=$(kernel_pkg || true)
fi
if [ -n "$pkg" ] && ! ls "$pkg"_*.deb >/dev/null 2>&1; then
  # _apt cannot write here: a root download warns (and works); keep that noise off the run.
  apt-get download "$pkg" >/dev/null 2>&1 || echo "apt-get download $pkg failed: using a cached kernel" >&2
fi
deb=$(ls -t linux-image-*.deb 2>/dev/null | head -n1 || true)
[ -n "$deb" ] || { echo "no kernel: apt-get download linux-image-amd64's dependency into $cache" >&2; exit 1; }
kv=$(dpkg-deb -f "$deb" Package | sed 's/^linux-image-//')

kernel="vmlinuz-$kv"
initrd="initramfs-$kv.cpio.gz"
stamp=$(cat "$here/initramfs-init" /bin/busybox "$deb" | sha256sum | cut -c1-16)
if [ ! -f "$kernel" ] || [ ! -f "$initrd" ] || [ "$(cat "$initrd.stamp" 2>/dev/null)" != "$stamp" ]; then
  # The package unpacked in a temporary directory: only the kernel and the initramfs are kept.
  work=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  dpkg-deb -x "$deb" "$work/pkg"
  cp "$work/pkg/boot/vmlinuz-$kv" "$kernel.tmp"
  # 9p over virtio (pci and mmio, for -machine pc and microvm), overlay and the scratch disk's
  # virtio-blk and ext4 (crc32c by name: the crypto API loads it, not modules.dep), and fuse
  # and tun (/dev/fuse, /dev/net/tun, as on most hosts), with their dependencies.
  busybox depmod -b "$work/pkg" "$kv"
  mods=$work/pkg/lib/modules/$kv
  tree=$work/initramfs
  mkdir -p "$tree"/{bin,dev,proc,sys,newroot,lib/modules/"$kv"}
  cp /bin/busybox "$tree/bin/busybox"
  for m in 9p 9pnet_virtio virtio_pci virtio_mmio overlay virtio_blk crc32c_generic ext4 fuse tun; do
    line=$(grep -E "(^|/)$m\.ko:" "$mods/modules.dep")
    for f in ${line%%:*} ${line#*:}; do
      mkdir -p "$tree/lib/modules/$kv/$(dirname "$f")"
      cp "$mods/$f" "$tree/lib/modules/$kv/$f"
    done
  done
  busybox depmod -b "$tree" "$kv"
  cp "$here/initramfs-init" "$tree/init"
  chmod 755 "$tree/init"
  (cd "$tree" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$initrd.tmp"
  mv "$kernel.tmp" "$kernel"
  mv "$initrd.tmp" "$initrd"
  echo "$stamp" >"$initrd.stamp"
  rm -f $(ls linux-image-*.deb | grep -vxF "$deb") # older kernels
fi
echo "$cache/$kernel"
echo "$cache/$initrd"

#!/usr/bin/env bash
# tests/sandbox/cgroup2_vm.sh — the sandbox's cgroup v2 paths, exercised in a virtual machine whose
# only cgroup hierarchy is cgroup2 (all controllers there). A v1 or hybrid host binds memory, pids
# and cpu to its v1 hierarchies, and a controller bound to v1 cannot be enabled in a v2 one, so a
# fresh cgroup2 mount there has none of them: the sandbox's v2 code needs a kernel of its own.
#
#   tests/sandbox/cgroup2_vm.sh BUILD_DIR [TEST [ARGS...]]...    (from the repo root; as root)
#
# The VM boots Debian's kernel (its package downloaded once into BUILD_DIR/cgroup2-vm) with a
# busybox initramfs that mounts this host's root read-only over 9p, mounts cgroup2 alone, enables
# memory, pids and cpu at its root and puts the tests in a cgroup of their own (a service manager's
# layout, so the sandbox takes its sibling tree, see sandbox/cgroup.c), then runs each TEST (a
# program of BUILD_DIR/tests, with its arguments; tests separated by ';') and powers off. It passes
# when every test exits 0 and the jails' cgroups were made in the v2 tree. Emulated (TCG) unless
# CISPO_VM_ACCEL=kvm: a nested KVM may not boot. Needs qemu-system-x86, busybox-static and cpio
# (scripts/deps.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:?usage: cgroup2_vm.sh BUILD_DIR [TEST [ARGS...]]...}" && pwd)
shift
tests="$*"
# by default what the v2 paths change: the runner's pools, limits and cpu quota (read back from
# cpu.max), and the attacks that meet the memory, pids and cpu controllers (the OOM kill of a step
# and never of the init, through detached shared memory; socket buffers; fork and thread bombs;
# cpu_time of children; jails at once). Not the attacks that must compute or compile much before
# meeting a limit: at emulated speed their time limits come first.
[ -n "$tests" ] || tests="test_sandbox_runner;test_sandbox_attacks control shm_ tcp_buffers fork_bomb_c fork_bomb_py thread_bomb \
cpu_children distinct_uids"
cache=$build/cgroup2-vm
mkdir -p "$cache"
fail() { echo "cgroup2_vm: $*" >&2; exit 1; }
for tool in qemu-system-x86_64 cpio apt-get dpkg; do command -v $tool >/dev/null || fail "$tool is missing: run scripts/deps.sh"; done
busybox=/bin/busybox
[ -x $busybox ] && ! ldd $busybox >/dev/null 2>&1 || fail "no static $busybox: install busybox-static (scripts/deps.sh)"
[ "$(id -u)" = 0 ] || fail "must run as root (the VM shares the host's root, whose files root owns)"

# the kernel and its 9p/virtio modules, from Debian's package (not installed: unpacked here)
if [ ! -f "$cache/kernel/ok" ]; then
  rm -rf "$cache/kernel" "$cache"/linux-image-*.deb
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || fail "apt knows no linux-image-amd64 (run apt-get update)"
  (cd "$cache" && apt-get download -qq -o APT::Sandbox::User=root "$pkg") || fail "cannot download $pkg"
  dpkg -x "$cache"/linux-image-*.deb "$cache/kernel"
  rm -f "$cache"/linux-image-*.deb
  touch "$cache/kernel/ok"
fi
vmlinuz=$(ls "$cache"/kernel/boot/vmlinuz-* | head -1)
moddir=$(ls -d "$cache"/kernel/lib/modules/* | head -1)/kernel

emulated=1
[ "${CISPO_VM_ACCEL:-}" = kvm ] && emulated=
# the initramfs: busybox, the modules (in dependency order), an init that hands over to the host's root
ird=$cache/initrd
rm -rf "$ird"
mkdir -p "$ird"/{bin,proc,sys,dev,mnt,mods}
cp "$busybox" "$ird/bin/busybox"
mods="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev
      drivers/virtio/virtio_pci fs/netfs/netfs fs/fscache/fscache net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p"
names=""
for m in $mods; do
  for f in "$moddir/$m.ko" "$moddir/$m.ko.xz"; do [ -f "$f" ] && cp "$f" "$ird/mods/" && names="$names $(basename "$f")"; done
done
cat > "$ird/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $names; do insmod /mods/\$m 2>/dev/null; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=1048576 hostroot /mnt || { echo "vm: cannot mount the host root"; poweroff -f; }
ip link set lo up
mount -t proc proc /mnt/proc; mount -t sysfs sys /mnt/sys; mount -t devtmpfs dev /mnt/dev
# fresh /tmp and /run for the tests; a checkout or build under the host's /tmp or /run stays visible
mkdir -p /otmp /orun; mount --bind /mnt/tmp /otmp; mount --bind /mnt/run /orun
mount -t tmpfs tmp /mnt/tmp; mount -t tmpfs run /mnt/run
for d in $root $build; do
  case \$d in /tmp/*) o=/otmp\${d#/tmp} ;; /run/*) o=/orun\${d#/run} ;; *) continue ;; esac
  mkdir -p /mnt\$d && mount --bind \$o /mnt\$d || echo "vm: cannot show \$d inside the VM"
done
mount -t cgroup2 none /mnt/sys/fs/cgroup
echo "vm: kernel \$(uname -r); cgroup hierarchies: \$(sed 's/.* - //' /proc/self/mountinfo | awk '\$1 ~ /^cgroup/ {print \$1}' | tr '\n' ' ')"
echo "vm: cgroup2 controllers: \$(cat /mnt/sys/fs/cgroup/cgroup.controllers)"
echo "+memory +pids +cpu" > /mnt/sys/fs/cgroup/cgroup.subtree_control
mkdir /mnt/sys/fs/cgroup/ci && echo \$\$ > /mnt/sys/fs/cgroup/ci/cgroup.procs
# the host's root becomes ours (a chrooted process may not make user namespaces)
exec switch_root /mnt /bin/sh -c '
  export CISPO_SRC=$root CISPO_REQUIRE_LANGS=${CISPO_REQUIRE_LANGS:-} CISPO_TEST_EMULATED=$emulated HOME=/tmp PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
  cd $root
  echo "vm: tests run in \$(cat /proc/self/cgroup)"
  echo "$tests" | tr ";" "\n" | while read -r t args; do
    [ -n "\$t" ] || continue
    s=\$(date +%s)
    $build/tests/\$t \$args 2>&1
    echo "vm: \$t exit \$? (\$((\$(date +%s) - s)) s)"
  done
  echo "vm: the sandbox tree: \$(ls -d /sys/fs/cgroup/cispo-sandbox 2>/dev/null) (\$(ls /sys/fs/cgroup/cispo-sandbox | grep -c cispo-jail) jail cgroups left)"
  echo "vm: done"
  echo o > /proc/sysrq-trigger; sleep 30'
EOF
chmod +x "$ird/init"
(cd "$ird" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$cache/initrd.gz")

accel=(-accel tcg -cpu max)
[ "${CISPO_VM_ACCEL:-}" = kvm ] && accel=(-enable-kvm -cpu host)
log=$cache/console.log
echo "cgroup2_vm: booting $(basename "$vmlinuz") (${accel[1]}), tests: $tests; console in $log"
timeout "${CISPO_VM_TIMEOUT:-1400}" qemu-system-x86_64 "${accel[@]}" -m 6G -smp "$(nproc)" -nographic -no-reboot \
  -kernel "$vmlinuz" -initrd "$cache/initrd.gz" -append "console=ttyS0 quiet panic=-1" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap </dev/null >"$log" 2>&1 || true
text=$cache/console.txt
tr -d '\r\033' < "$log" > "$text"  # the serial console ends its lines with CR
sed -n '/vm: kernel/,$p' "$text" | grep -v "^\[.*\] \(reboot\|sysrq\)"
grep -q "^vm: done" "$text" || fail "the VM did not finish (timeout or boot failure): see $log"
grep -q "cgroup hierarchies: cgroup2 $" "$text" || fail "the VM had cgroup hierarchies other than one cgroup2"
n_tests=$(echo "$tests" | tr ';' '\n' | grep -c .)
[ "$(grep -c "^vm: .* exit 0 (" "$text")" = "$n_tests" ] || fail "a test failed under cgroup v2"
grep -q "^vm: the sandbox tree: /sys/fs/cgroup/cispo-sandbox " "$text" || fail "the jails' cgroups were not made in the v2 tree"
echo "cgroup2_vm: every test passed under cgroup v2"

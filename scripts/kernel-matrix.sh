#!/usr/bin/env bash
# Runs pidwatch's conformance check on other kernels under QEMU.
#
# Usage: scripts/kernel-matrix.sh KERNEL_DIR
#
# Builds a static pidwatch, packs it with a small /init (matrix-init.c) into
# an initramfs, and boots every kernel image in KERNEL_DIR (files named
# vmlinuz* or bzImage*) under qemu-system-x86_64 with software emulation.
# Inside, /init runs `pidwatch check --json` on the kernel's own regime and
# forced into each older regime. The host kernel runs the same checks. The
# script prints one line per kernel and a summary table, and exits 1 if
# pidwatch departs from the fixed semantics on any kernel in any regime.
#
# Needs: cargo, cc with a static libc (Debian libc6-dev), cpio, gzip,
# python3 and qemu-system-x86_64 (Debian qemu-system-x86). Kernels must be
# x86-64 images that boot with "console=ttyS0" and carry their drivers
# built in, as distribution cloud kernels do.
#
# Environment:
#   PIDWATCH_MATRIX_DIR      work folder (default target/kernel-matrix)
#   PIDWATCH_MATRIX_TIMEOUT  seconds allowed per kernel (default 600)

set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
	echo "usage: $0 KERNEL_DIR (a folder of vmlinuz* or bzImage* images)" >&2
	exit 2
fi
kernel_dir=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
work=${PIDWATCH_MATRIX_DIR:-$root/target/kernel-matrix}
timeout_s=${PIDWATCH_MATRIX_TIMEOUT:-600}

for tool in cargo cc cpio gzip python3 qemu-system-x86_64; do
	if ! command -v "$tool" >/dev/null; then
		echo "$0: $tool is missing; on Debian: apt-get install qemu-system-x86 cpio python3 gcc libc6-dev" >&2
		exit 2
	fi
done

shopt -s nullglob
kernels=("$kernel_dir"/vmlinuz* "$kernel_dir"/bzImage*)
if [[ ${#kernels[@]} -eq 0 ]]; then
	echo "$0: no vmlinuz* or bzImage* image in $kernel_dir" >&2
	exit 2
fi

rm -rf "$work"
mkdir -p "$work/initramfs" "$work/logs"

echo "building a static pidwatch" >&2
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release \
	--manifest-path "$root/Cargo.toml" --target x86_64-unknown-linux-gnu \
	--target-dir "$root/target/matrix" -p pidwatch --bin pidwatch
binary=$root/target/matrix/x86_64-unknown-linux-gnu/release/pidwatch
cp "$binary" "$work/initramfs/pidwatch"
cc -static -O2 -Wall -o "$work/initramfs/init" "$root/scripts/matrix-init.c"
(cd "$work/initramfs" && find . | cpio -o -H newc --quiet | gzip -1 >"$work/initrd.gz")

# The host runs the same checks through the same markers, as /init would.
{
	for label in auto fixed legacy-thread-pidfd no-thread-pidfd no-pidfd; do
		echo "=== pidwatch-matrix begin $label"
		args=(check --json)
		[[ $label != auto ]] && args+=(--regime "$label")
		rc=0
		"$binary" "${args[@]}" || rc=$?
		echo "=== pidwatch-matrix end $label $rc"
	done
	echo "=== pidwatch-matrix done"
} >"$work/logs/host.log" 2>&1

logs=("$work/logs/host.log")
for kernel in "${kernels[@]}"; do
	name=$(basename "$kernel")
	logs+=("$work/logs/$name.log")
	echo "booting $name" >&2
	timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -m 512 -smp 2 \
		-nographic -no-reboot -kernel "$kernel" -initrd "$work/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1" \
		</dev/null >"$work/logs/$name.log" 2>&1 || echo "qemu for $name ended with status $?" >&2
	python3 "$root/scripts/matrix-summary.py" --line "$work/logs/$name.log" || true
done

python3 "$root/scripts/matrix-summary.py" "${logs[@]}"

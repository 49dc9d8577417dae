#!/usr/bin/env bash
# numa-vm.sh: prove the echo server's NUMA behaviour on a two-node machine.
# Boots a qemu guest (TCG, 4 CPUs, 2 NUMA nodes: CPUs 0-1 and 2-3, 1 GiB
# each, distance 21) from Debian's kernel and a busybox initramfs holding
# the echo server, cmd/numacheck and the hugepage and ws test binaries;
# numacheck runs the checks there and prints one PASS/FAIL line per check
# with the placement and pinning figures, then "N passed, N failed".
# docs/NUMA-VM.md describes the checks and shows a run.
#
# usage: scripts/numa-vm.sh [--timeout SECS] [--ws-run REGEX] [--ws-skip REGEX]
#                           [--hugepage-run REGEX] [--no-cgo] [--keep]
#   --timeout SECS       hard limit for the guest (default 300); qemu is killed after it
#   --ws-run REGEX       which ws tests run in the guest (-test.run; default: the pool,
#                        pinning, zero-copy, shutdown, conformance and interop tests; ''
#                        runs the whole suite, 2-4 minutes more under TCG)
#   --ws-skip REGEX      which of those do not (-test.skip; default none). For the whole
#                        suite, skip the cases TCG breaks:
#                        --ws-run '' --ws-skip '^(TestConformanceSlowConsumer)$|^TestServerRegressions$/^BUG-1' --timeout 600
#   --hugepage-run REGEX which hugepage tests run (default: all, -test.short)
#   --no-cgo             build only the CGO_ENABLED=0 (sysfs) echo
#   --keep               keep the work directory (initramfs, console log) and print its path
# environment:
#   NUMA_VM_CACHE   where the kernel extracted from Debian's package is kept between
#                   runs (default ${XDG_CACHE_HOME:-$HOME/.cache}/hioload-ws/numa-vm)
#   NUMA_VM_KERNEL  a vmlinuz to boot instead of Debian's current linux-image-amd64
#
# It installs, only when missing and with apt-get: qemu-system-x86,
# busybox-static, cpio. It downloads (apt-get download, not installed) the
# linux-image-*-amd64 package that linux-image-amd64 depends on and keeps
# only its vmlinuz.
#
# exit status: 0 every check passed, 1 a check failed or the guest did not
# finish in time, 2 a tool or the kernel could not be had, or the build failed.
set -euo pipefail

timeout_s=300
# The ws tests that exercise pools, pinning, placement and the data path
# on the loops, plus the core conformance and interop cases: about 20 s
# under TCG on an idle machine. The whole suite takes 2-4 minutes there.
ws_run='^(TestPoolOnPlannedNode|TestPoolGetsHugetlbWhenReserved|TestRetainedPayloadOutlivesHandler|TestMemoryExhaustionRefusesCleanly|TestLoopThreadsPinned|TestZeroCopyEcho|TestHotPathAllocs|TestSendFromAnotherGoroutine|TestShutdownReleasesEverything|TestSlowConsumerGets1008|TestProbeInStatsAndDebugProbes|TestConformance|TestConformanceApp|TestConformanceHandshake|TestConformanceLimits|TestInteropGobwas|TestInteropGorilla)$'
ws_skip=''
hugepage_run=''
cgo=1
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) timeout_s="${2:?--timeout needs seconds}"; shift 2 ;;
	--ws-run) ws_run="${2?--ws-run needs a regex}"; shift 2 ;;
	--ws-skip) ws_skip="${2?--ws-skip needs a regex}"; shift 2 ;;
	--hugepage-run) hugepage_run="${2?--hugepage-run needs a regex}"; shift 2 ;;
	--no-cgo) cgo=0; shift ;;
	--keep) keep=1; shift ;;
	-h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
	*) echo "numa-vm: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
done
case "$timeout_s" in '' | *[!0-9]*) echo "numa-vm: bad --timeout $timeout_s" >&2; exit 2 ;; esac

t_start=$SECONDS
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
log() { echo "numa-vm: $*"; }
die() { echo "numa-vm: $*" >&2; exit 2; }

# --- tools -------------------------------------------------------------------
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null && sudo="sudo -n" || sudo="no-root"
fi
apt_updated=0
apt_install() {
	[ "$sudo" = no-root ] && die "need root (or sudo) to install $*"
	command -v apt-get >/dev/null || die "no apt-get here; install the equivalents of $* by hand"
	log "installing $*"
	if [ $apt_updated -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq || die "apt-get update failed"
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
		die "apt-get install $* failed"
}
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# The initramfs needs a static busybox; Debian's busybox-static installs it
# as /bin/busybox (the dynamic "busybox" package would not run in the guest).
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
command -v go >/dev/null || die "go not found"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "busybox-static installed but no busybox on PATH"

# --- kernel ------------------------------------------------------------------
cache=${NUMA_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hioload-ws/numa-vm}
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'; }
if [ -n "${NUMA_VM_KERNEL:-}" ]; then
	kernel=$NUMA_VM_KERNEL
	[ -r "$kernel" ] || die "NUMA_VM_KERNEL=$kernel: not readable"
else
	pkg=$(kernel_pkg)
	if [ -z "$pkg" ] && [ "$sudo" != no-root ]; then
		$sudo apt-get update -qq && apt_updated=1
		pkg=$(kernel_pkg)
	fi
	[ -n "$pkg" ] || die "apt-cache knows no linux-image-amd64 (is this Debian with an amd64 archive?)"
	kernel=$cache/vmlinuz-${pkg#linux-image-}
	if [ ! -s "$kernel" ]; then
		mkdir -p "$cache"
		dl=$(mktemp -d "$cache/dl.XXXXXX")
		log "downloading $pkg (kept: only its vmlinuz, in $cache)"
		# As root, apt drops to the _apt user to download, which cannot
		# write under /root: say that root may download.
		sandbox=()
		[ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
		(cd "$dl" && apt-get download -qq "${sandbox[@]}" "$pkg") || { rm -rf "$dl"; die "apt-get download $pkg failed"; }
		deb=$(ls "$dl"/*.deb)
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dl" --wildcards './boot/vmlinuz-*' ||
			{ rm -rf "$dl"; die "no vmlinuz in $deb"; }
		mv "$dl"/boot/vmlinuz-* "$kernel.part" && mv "$kernel.part" "$kernel"
		rm -rf "$dl"
		# Keep one kernel: drop those of packages Debian has replaced.
		for old in "$cache"/vmlinuz-*; do [ "$old" = "$kernel" ] || rm -f "$old"; done
	fi
fi
log "kernel $kernel"

# --- work directory and cleanup ----------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/numa-vm.XXXXXX")
qemu_pid=""
cleanup() {
	local rc=$?
	set +e # qemu may exit (and remove its pid file) at any moment while we look
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null || true # timeout(1), which passes it to qemu
	fi
	local q
	q=$(cat "$work/qemu.pid" 2>/dev/null)
	if [ -n "$q" ] && kill -0 "$q" 2>/dev/null; then kill -9 "$q" 2>/dev/null; fi
	if [ $keep -eq 1 ]; then log "work directory kept: $work"; else rm -rf "$work"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build -------------------------------------------------------------------
t_build=$SECONDS
ird=$work/initramfs
mkdir -p "$ird"/{bin,etc,proc,sys,dev,tmp}
cd "$root"
gobuild() { # gobuild CGO OUT build|test PKG: go build or go test -c into the initramfs
	local c=$1 out=$2 how=$3 pkg=$4
	if [ "$how" = test ]; then
		CGO_ENABLED=$c go test -c -o "$ird/bin/$out" "$pkg" || die "go test -c $pkg failed"
	else
		CGO_ENABLED=$c go build -o "$ird/bin/$out" "$pkg" || die "go build $pkg failed"
	fi
}
echos=()
ws_cgo=0
if [ $cgo -eq 1 ] && [ "$(go env CGO_ENABLED)" = 1 ]; then
	if CGO_ENABLED=1 go build -o "$ird/bin/echo-cgo" ./echo 2>"$work/cgo.err"; then
		echos+=(/bin/echo-cgo)
		ws_cgo=1
	else
		log "cgo build of echo failed; checking the sysfs build only:"
		sed 's/^/  /' "$work/cgo.err"
	fi
fi
gobuild 0 echo-nocgo build ./echo
echos+=(/bin/echo-nocgo)
gobuild 0 numacheck build ./cmd/numacheck
gobuild 0 hugepage.test test ./hugepage
gobuild $ws_cgo ws.test test ./ws
if [ $ws_cgo -eq 1 ]; then
	# The cgo binaries load libnuma and hwloc (and what they need) at run
	# time: copy those libraries and the dynamic loader, at their paths.
	for lib in $(ldd "$ird/bin/echo-cgo" "$ird/bin/ws.test" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | sort -u); do
		mkdir -p "$ird$(dirname "$lib")"
		cp -L "$lib" "$ird$lib"
	done
fi
cp "$busybox" "$ird/bin/busybox"
cp "$root/scripts/numa-vm/init" "$ird/init"
chmod +x "$ird/init"
echo_list=$(IFS=,; echo "${echos[*]}")
# A test binary that hangs is stopped (and reported) before the guest's limit.
test_timeout=$((timeout_s > 150 ? timeout_s - 90 : 60))s
printf '%s\n' -echo "$echo_list" -hugepage-test /bin/hugepage.test -ws-test /bin/ws.test \
	${hugepage_run:+-hugepage-run "$hugepage_run"} ${ws_run:+-ws-run "$ws_run"} \
	${ws_skip:+-ws-skip "$ws_skip"} -test-timeout "$test_timeout" >"$ird/etc/numacheck.args"
(cd "$ird" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio" || die "cpio failed"
log "built and packed $(du -m "$work/initramfs.cpio" | cut -f1) MiB initramfs in $((SECONDS - t_build))s: ${echos[*]}, numacheck, hugepage.test, ws.test"

# --- boot --------------------------------------------------------------------
t_boot=$SECONDS
log "booting: qemu TCG, 4 CPUs, node 0 = CPUs 0-1 + 1 GiB, node 1 = CPUs 2-3 + 1 GiB, distance 21 (limit ${timeout_s}s)"
: >"$work/console.log"
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
	-accel tcg -cpu max -smp 4 -m 2G \
	-object memory-backend-ram,id=m0,size=1G -object memory-backend-ram,id=m1,size=1G \
	-numa node,nodeid=0,cpus=0-1,memdev=m0 -numa node,nodeid=1,cpus=2-3,memdev=m1 \
	-numa dist,src=0,dst=1,val=21 \
	-kernel "$kernel" -initrd "$work/initramfs.cpio" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 transparent_hugepage=madvise" \
	-nodefaults -display none -serial "file:$work/console.log" -monitor none \
	-no-reboot -pidfile "$work/qemu.pid" </dev/null >"$work/qemu.out" 2>&1 &
qemu_pid=$!
# Show the guest's console as it comes, without its carriage returns.
tail -n +1 --pid=$qemu_pid -f "$work/console.log" | tr -d '\r' &
tail_pid=$!
qemu_rc=0
wait $qemu_pid || qemu_rc=$?
qemu_pid=""
wait $tail_pid 2>/dev/null || true
guest_s=$((SECONDS - t_boot))

# --- verdict -----------------------------------------------------------------
tr -d '\r' <"$work/console.log" >"$work/console.txt"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$work/console.txt" | tail -1 || true)
guest_exit=$(sed -n 's/^numa-vm: exit=\([0-9]*\).*/\1/p' "$work/console.txt" | tail -1)
total_s=$((SECONDS - t_start))
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
	log "FAIL: the guest did not finish within ${timeout_s}s (qemu killed)"
	exit 1
fi
if [ -z "$guest_exit" ]; then
	log "FAIL: the guest stopped without reporting (qemu exit $qemu_rc)"
	sed 's/^/  qemu: /' "$work/qemu.out"
	exit 1
fi
log "${summary:-no summary line} (guest ${guest_s}s, whole run ${total_s}s)"
[ "$guest_exit" = 0 ] || exit 1

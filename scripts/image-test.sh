#!/usr/bin/env bash
# The container images, really built and run, without a daemon or a
# registry:
#
#   1. the base: a debootstrap Debian 12 root with the local Go toolchain
#      (scripts/image/base.sh), made once per machine and kept;
#   2. Dockerfile.build on that base (buildah bud, BASE build argument);
#   3. the runtime image (Dockerfile) cut from it, which must hold exactly
#      /echo, /etc/passwd, /etc/group and the libraries ldd names;
#   4. echo from the runtime image, as user 65532 (buildah run): -check and
#      -topology, then serving: /readyz, scripts/wine/wsclient's echo checks
#      (text, binary, fragments, ping, close codes, 32 connections), and a
#      SIGTERM drain that ends in close 1001 and exit 0.
#
# Installs buildah and debootstrap with apt-get when missing; needs root
# (buildah's chroot isolation and debootstrap). Images stay in buildah's
# storage as the cache of the next run: the base, and the build image's
# layers up to the source copy; the builds use this machine's Go build
# cache.
# IMAGE_TEST_KEEP=1 keeps the containers too; scripts/image-test.sh --clean
# removes every image it made.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}

say() { echo "image-test: $*"; }
step_t0=$SECONDS
timed() { # timed NAME CMD...: run and say how long it took
	local t0=$SECONDS
	"${@:2}"
	say "$1 ($((SECONDS - t0))s)"
}

if [ "$(id -u)" -ne 0 ]; then
	say "SKIP: needs root (buildah --isolation chroot, debootstrap)"
	exit 0
fi
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
	command -v apt-get >/dev/null || { say "no apt-get: install ${need[*]} by hand"; exit 1; }
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	timed "installed ${need[*]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

gover=$($GO env GOVERSION)
# The base's tag names what made it: the Go toolchain, base.sh and the CA
# certificates it copies; a change to any makes a new base.
recipe=$({
	cat scripts/image/base.sh
	cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true
} | sha256sum | cut -c1-12)
base=localhost/hioload-ws-base:$gover-$recipe
build=localhost/hioload-ws-build:test
runtime=localhost/hioload-ws:test

if [ "${1:-}" = "--clean" ]; then
	for img in $runtime $build $(buildah images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/hioload-ws-base:' || true); do
		buildah rmi -f "$img" >/dev/null 2>&1 && say "removed $img" || true
	done
	exit 0
fi

tmp=$(mktemp -d)
ctr=""
bctr=""
echo_pid=""
run_pid=""
cleanup() {
	[ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null || true
	[ -n "$run_pid" ] && wait "$run_pid" 2>/dev/null || true
	if [ "${IMAGE_TEST_KEEP:-0}" != 1 ]; then
		for c in $ctr $bctr; do
			buildah umount "$c" >/dev/null 2>&1 || true
			buildah rm "$c" >/dev/null 2>&1 || true
		done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

timed "base $base" scripts/image/base.sh "$base"
# Bases of other recipes or toolchains are not used again.
for old in $(buildah images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/hioload-ws-base:' || true); do
	[ "$old" = "$base" ] || { buildah rmi "$old" >/dev/null 2>&1 && say "removed the old base $old"; } || true
done
# The build compiles with this machine's Go build cache mounted: the same
# toolchain at the same GOROOT, so the standard library and whatever else
# the earlier steps of make test compiled is not compiled again.
gocache=$($GO env GOCACHE)
bud() { # bud DOCKERFILE TAG ARG=VALUE
	local t0=$SECONDS
	buildah bud --isolation chroot --layers --build-arg "$3" -v "$gocache:/root/.cache/go-build" \
		-f "$1" -t "$2" . >"$tmp/bud.log" 2>&1 ||
		{ tail -30 "$tmp/bud.log"; say "FAIL: buildah bud -f $1"; exit 1; }
	say "built $2 from $1 ($((SECONDS - t0))s)"
}
bud Dockerfile.build "$build" BASE="$base"
bud Dockerfile "$runtime" BUILD_IMAGE="$build"

# What the runtime image holds: echo, the two /etc files and exactly the
# libraries ldd resolves for bin/echo in the build image.
ctr=$(buildah from "$runtime")
bctr=$(buildah from "$build")
want=$(buildah run --isolation chroot "$bctr" -- sh -c "ldd bin/echo | grep -o '/[^ ]*'")
buildah rm "$bctr" >/dev/null
bctr=""
want=$(printf "%s\n" /echo /etc/group /etc/passwd $want | sort -u)
mnt=$(buildah mount "$ctr")
got=$(cd "$mnt" && find . -type f -o -type l | sed 's|^\.||' | sort)
if [ "$got" != "$want" ]; then
	say "FAIL: the runtime image holds other files than echo and what it links"
	diff <(echo "$want") <(echo "$got") || true
	exit 1
fi
size=$(du -sk "$mnt" | cut -f1)
buildah umount "$ctr" >/dev/null
user=$(buildah inspect --type image --format '{{.OCIv1.Config.User}} {{index .OCIv1.Config.Entrypoint 0}}' "$runtime")
[ "$user" = "65532:65532 /echo" ] || { say "FAIL: runtime image user and entrypoint are $user"; exit 1; }
say "runtime image: $(echo "$got" | wc -l) files, ${size} KiB, user 65532, entrypoint /echo"

run() { buildah run --isolation chroot --user 65532:65532 "$ctr" -- /echo "$@"; }
run -check -json -metrics :9090 -drain-delay 1s >"$tmp/check.json"
grep -q '"pool_bytes_per_node"' "$tmp/check.json" || { cat "$tmp/check.json"; exit 1; }
run -topology >"$tmp/topology.txt"
grep -q '^numa alignment:' "$tmp/topology.txt" || { cat "$tmp/topology.txt"; exit 1; }
say "echo -check and -topology run in the runtime image ($(grep -c . "$tmp/topology.txt") report lines)"

# Serving: buildah run shares the host's network with chroot isolation.
buildah run --isolation chroot --user 65532:65532 "$ctr" -- \
	/echo -addr 127.0.0.1:0 -metrics 127.0.0.1:0 -stats 0 -drain-delay 1s -log-level warn \
	>"$tmp/echo.out" 2>"$tmp/echo.err" &
run_pid=$!
addr="" admin=""
for _ in $(seq 1 200); do
	addr=$(sed -n 's/^echo: listening on //p' "$tmp/echo.out")
	admin=$(sed -n 's|^echo: metrics on http://\(.*\)/metrics$|\1|p' "$tmp/echo.out")
	[ -n "$addr" ] && [ -n "$admin" ] && break
	kill -0 "$run_pid" 2>/dev/null || { cat "$tmp/echo.err"; say "FAIL: echo exited"; exit 1; }
	sleep 0.1
done
[ -n "$addr" ] || { cat "$tmp/echo.err"; say "FAIL: echo did not print its address"; exit 1; }
# buildah does not forward SIGTERM (it kills its child): find echo among
# the descendants of the buildah process started here.
descendants() { local p; for p in $(ps -o pid= --ppid "$1"); do echo "$p"; descendants "$p"; done; }
for p in $(descendants "$run_pid"); do
	[ "$(cat /proc/"$p"/comm 2>/dev/null)" = echo ] && echo_pid=$p
done
[ -n "$echo_pid" ] || { say "FAIL: no echo process under buildah run"; exit 1; }
[ "$(awk '/^Uid:/ { print $2 }' /proc/"$echo_pid"/status)" = 65532 ] || { say "FAIL: echo does not run as 65532"; exit 1; }

# http_status HOST:PORT PATH prints the status of a GET (bash's /dev/tcp:
# no curl needed).
http_status() {
	exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" >&3
	local line
	read -r line <&3 || true
	exec 3<&-
	echo "$line" | awk '{ print $2 }'
}
$GO build -o "$tmp/wsclient" ./scripts/wine/wsclient
[ "$(http_status "$admin" /readyz)" = 200 ] || { say "FAIL: /readyz is not 200"; exit 1; }
timeout 120 "$tmp/wsclient" -addr "$addr" | sed 's/^/    /'
timeout 60 "$tmp/wsclient" -addr "$addr" -hold >"$tmp/hold.out" 2>&1 &
hold_pid=$!
for _ in $(seq 1 50); do grep -q held "$tmp/hold.out" && break; sleep 0.2; done
kill -TERM "$echo_pid"
sleep 0.2
code=$(http_status "$admin" /readyz || true)
[ "$code" = 503 ] || { say "FAIL: /readyz answered $code during the drain, want 503"; exit 1; }
wait "$hold_pid" || { cat "$tmp/hold.out"; say "FAIL: the held connection did not get close 1001"; exit 1; }
grep -v '^held$' "$tmp/hold.out" | sed 's/^/    /'
rc=0
wait "$run_pid" || rc=$?
run_pid="" echo_pid=""
[ "$rc" = 0 ] || { cat "$tmp/echo.err"; say "FAIL: echo in the runtime image exited $rc after SIGTERM"; exit 1; }
grep -q '^Server stopped.' "$tmp/echo.out" || { cat "$tmp/echo.out"; exit 1; }
say "PASS: echo from the runtime image served, drained on SIGTERM and exited 0 ($((SECONDS - step_t0))s in all)"

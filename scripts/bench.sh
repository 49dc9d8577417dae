#!/usr/bin/env bash
# bench.sh — our echo server against the Go peers, side by side.
#
# Builds our echo (./echo, when the tree has it) and the peers' echo servers
# and the load generator (bench/, a module of its own); ours runs twice, as
# hioload-ws (the io engine auto chooses: io_uring where the kernel has it)
# and hioload-ws-epoll (-engine epoll; only where auto chose io_uring).
# hioload-ws-uring (-engine uring) may be named in --servers too. When UWS_BIN names a
# uWebSockets EchoServer binary (its examples/EchoServer, built for
# measuring; it takes the port as its first argument), it runs too, as the
# C++ reference "uws". Then for each repeat,
# for each scenario, runs every server in turn (order rotated each repeat):
# the server pinned to CPU 0, the generator to CPU 1, a fresh server process
# and port per run. Prints a progress line per step, then the tables (medians
# over repeats, ratios to the best peer) made by bench/cmd/report.
# HIOLOAD_ARGS adds flags to both of ours (HIOLOAD_ARGS="-batch-wait 50us").
#
#   scripts/bench.sh                      full run: 3 repeats, 3 s windows (about 35 min)
#   scripts/bench.sh --smoke              vet and test bench/, then every server ~1 s on two small scenarios (CI)
#   scripts/bench.sh --servers gnet,gobwas --scenarios 64B,idle --repeats 1 --duration 2
#   scripts/bench.sh --servers hioload-ws --scenarios idle-zc --our-args "-compression-client-window-bits 12"
#
# Scenarios: 64B 1KiB 16KiB 1MiB (100 connections x 16 in flight), 2000x1
# (2,000 connections x 1 in flight, 64 B), rate20k (20,000 msg/s over 200
# connections, 64 B; latency), idle (19,000 idle connections; RSS per
# connection). Compressed (permessage-deflate, the generator offering what
# a browser offers, JSON-like text; servers that support it only: ours,
# gorilla, gws, nbio): z1KiB z16KiB (each server's compression as it comes,
# without context takeover of the client's messages), zc1KiB zc16KiB
# (context takeover both ways where the server supports it), idle-z idle-zc
# (19,000 connections that each echoed one compressed message, in those two
# modes). Exits non-zero if a server fails to start, any echo differs from
# what was sent, or a connection fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
all_servers="hioload-ws,hioload-ws-epoll,hioload-ws-uring,uws,gnet,gobwas,nbio,gws,gorilla"
servers=""
scenarios="64B,1KiB,16KiB,1MiB,2000x1,rate20k,idle,z1KiB,z16KiB,zc1KiB,zc16KiB,idle-z,idle-zc"
repeats=3
duration=3
warmup=1
out=""
plot=""
smoke=0
server_cpu=0
gen_cpu=1
text=()
our_args=""

usage() {
	sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
	cat <<EOF
flags:
  --servers LIST     comma-separated, from: $all_servers (default: all that build)
  --scenarios LIST   comma-separated (default: $scenarios)
  --repeats N        repeats of every (scenario, server) pair; medians are reported (default $repeats)
  --duration S       measurement window in seconds (default $duration)
  --warmup S         load before each window in seconds (default $warmup)
  --out FILE         keep the raw JSON lines here (default: a temporary file)
  --plot FILE.png    also draw throughput and CPU/msg by payload size
  --cpus S,G         CPU for the server and for the generator (default $server_cpu,$gen_cpu)
  --text             send text frames (servers validate UTF-8) instead of binary
  --our-args "FLAGS" more flags for our echo, after the scenario's own
  --smoke            two small scenarios (1 KiB text, plain and compressed), ~1 s per server each; for CI
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--servers) servers=$2; shift 2 ;;
	--scenarios) scenarios=$2; shift 2 ;;
	--repeats) repeats=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--plot) plot=$2; shift 2 ;;
	--cpus) server_cpu=${2%,*}; gen_cpu=${2#*,}; shift 2 ;;
	--text) text=(-text); shift ;;
	--our-args) our_args=$2; shift 2 ;;
	--smoke) smoke=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
	esac
done

if [ "$smoke" = 1 ]; then
	scenarios=smoke,zsmoke
	text=(-text)
	repeats=1
	duration=1
	warmup=0.3
fi

command -v taskset >/dev/null || { echo "bench.sh: taskset (util-linux) is needed" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ] && [ "$server_cpu" != "$gen_cpu" ]; then
	echo "bench.sh: one CPU only: server and generator share CPU $server_cpu; CPU per message still ranks, msg/s does not" >&2
	gen_cpu=$server_cpu
fi

bin=$(mktemp -d /tmp/hioload-bench.XXXXXX)
children=()
cleanup() {
	for p in "${children[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	rm -rf "$bin"
}
trap cleanup EXIT
[ -n "$out" ] || out="${TMPDIR:-/tmp}/hioload-bench-$(date +%Y%m%d-%H%M%S).jsonl"
: >"$out"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- build ------------------------------------------------------------------
if [ "$smoke" = 1 ]; then
	log "smoke: go vet and go test in bench/ (no timing is asserted)"
	(cd "$root/bench" && go vet ./... && go test -count=1 ./...) >&2
fi
log "build: load generator, report and peer servers (bench/)"
(cd "$root/bench" && go build -o "$bin/" ./cmd/load ./cmd/report ./cmd/freeport)
built=()
for s in gnet gobwas nbio gws gorilla; do
	if (cd "$root/bench" && go build -o "$bin/$s" "./servers/$s"); then
		built+=("$s")
	else
		log "build: $s FAILED"
	fi
done
if [ -n "${UWS_BIN:-}" ]; then
	if [ -x "$UWS_BIN" ]; then
		log "uws: $UWS_BIN (uWebSockets EchoServer, the reference)"
		ln -s "$(realpath "$UWS_BIN")" "$bin/uws"
		built=("uws" "${built[@]}")
	else
		log "uws: UWS_BIN=$UWS_BIN is not an executable; running without it"
	fi
fi
if [ -d "$root/echo" ]; then
	log "build: our echo (go build ./echo, run as hioload-ws -workers 1, and as hioload-ws-epoll -workers 1 -engine epoll)"
	if (cd "$root" && go build -o "$bin/hioload-ws" ./echo); then
		ln -s hioload-ws "$bin/hioload-ws-epoll"
		if why=$("$bin/hioload-ws" -engine uring -topology 2>&1 >/dev/null); then
			ln -s hioload-ws "$bin/hioload-ws-uring"
			built=("hioload-ws" "hioload-ws-epoll" "${built[@]}")
		else
			log "build: auto is epoll here (no io_uring: $why); hioload-ws-epoll would repeat it"
			built=("hioload-ws" "${built[@]}")
		fi
	else
		log "build: our echo FAILED"
		[ -n "$servers" ] || exit 1
	fi
else
	log "build: no echo/ in this tree; running the peers only"
fi
if [ -z "$servers" ]; then
	servers=$(IFS=,; echo "${built[*]}")
fi
IFS=, read -ra server_list <<<"$servers"
IFS=, read -ra scenario_list <<<"$scenarios"
for s in "${server_list[@]}"; do
	[ -x "$bin/$s" ] || { log "server $s was not built"; exit 1; }
done

# --- one run ------------------------------------------------------------------
failures=0
run_no=0

# The offer of the compressed scenarios: what browsers send.
deflate_offer="permessage-deflate; client_max_window_bits"

# compressed SCENARIO: is it one of the permessage-deflate scenarios?
compressed() { case $1 in z* | idle-z*) return 0 ;; esac; return 1; }

# server_args NAME SCENARIO: the server's flags for the scenario.
server_args() {
	local name=$1 scenario=$2
	case "$name" in
	hioload-ws) echo -workers 1 "${HIOLOAD_ARGS:-}" ;;
	hioload-ws-epoll) echo -workers 1 -engine epoll "${HIOLOAD_ARGS:-}" ;;
	hioload-ws-uring) echo -workers 1 -engine uring "${HIOLOAD_ARGS:-}" ;;
	esac
	case "$scenario" in
	zc* | idle-zc)
		case "$name" in
		hioload-ws*) echo -compression -compression-client-context-takeover ;;
		gws) echo -compression -context-takeover ;;
		*) echo -compression ;; # gorilla and nbio have no context takeover
		esac ;;
	z* | idle-z) echo -compression ;;
	esac
	case "$name" in hioload-ws*) echo "$our_args" ;; esac
	return 0
}

# supports NAME SCENARIO: can the server run the scenario?
supports() {
	compressed "$2" || return 0
	case $1 in hioload-ws* | gorilla | gws | nbio) return 0 ;; esac
	return 1
}

# start_server NAME [ARGS...]: starts it pinned on $server_cpu; sets $pid and $port.
start_server() {
	local name=$1 args=("${@:2}")
	port=$("$bin/freeport")
	if [ "$name" = uws ]; then
		args=("$port") # it listens on 127.0.0.1 and takes no flags
	else
		args=(-addr "127.0.0.1:$port" "${args[@]}")
	fi
	taskset -c "$server_cpu" "$bin/$name" "${args[@]}" >"$bin/$name.log" 2>&1 &
	pid=$!
	children+=("$pid")
	local i
	for i in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			case $name in hioload-ws*) # it says which io engine it runs, after its address
				local k
				for k in $(seq 20); do grep -q '^echo: io engine' "$bin/$name.log" && break; sleep 0.05; done
				log "  $name: $(sed -n 's/^echo: \(io engine .*\)/\1/p' "$bin/$name.log")" ;;
			esac
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	log "server $name failed to start on port $port:"
	tail -5 "$bin/$name.log" >&2 || true
	stop_server
	return 1
}

stop_server() {
	kill -TERM "$pid" 2>/dev/null || true
	local i
	for i in $(seq 40); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# src_base: a fresh /16 of source addresses per run, so TIME_WAIT sockets
# from earlier runs never crowd a source address's ports.
src_base() { echo "127.$((10 + run_no % 200)).0.1"; }

# load_run NAME SCENARIO FLAGS...: one measured run of the generator.
load_run() {
	local name=$1 scenario=$2
	shift 2
	local rc=0
	taskset -c "$gen_cpu" "$bin/load" -addr "127.0.0.1:$port" -pid "$pid" \
		-server "$name" -scenario "$scenario" -src "$(src_base)" -srcs 250 \
		-warmup "${warmup}s" -duration "${duration}s" "${text[@]}" "$@" >>"$out" 2>"$bin/load.err" || rc=$?
	log "  $(tail -1 "$bin/load.err")"
	return $rc
}

# idle_run NAME SCENARIO [LOAD FLAGS...]: RSS per connection with 19,000 idle
# connections, opened by two generators of 9,500 (each below the 20,000
# open-file limit) from separate source ranges; they hold the connections
# until sent SIGTERM.
idle_run() {
	local name=$1 scenario=$2 before after ready=0 i g
	shift 2
	sleep 0.2
	before=$(rss_kb "$pid")
	local base=$((10 + run_no % 200))
	local gens=()
	for g in 1 2; do
		taskset -c "$gen_cpu" "$bin/load" -idle -addr "127.0.0.1:$port" -conns 9500 \
			-src "127.$base.$((g * 100)).1" -srcs 100 -hold 120s -dial-timeout 60s "$@" \
			</dev/null >"$bin/idle$g.out" 2>&1 &
		gens+=($!)
		children+=($!)
	done
	for i in $(seq 3100); do # up to the longest -dial-timeout (300 s)
		ready=$(cat "$bin/idle1.out" "$bin/idle2.out" | grep -c '"ready":' || true)
		[ "$ready" -ge 2 ] && break
		sleep 0.1
	done
	sleep 1 # let the server finish its accounting of the last connections
	after=$(rss_kb "$pid")
	local ok=true
	grep -q '"ready":9500}' "$bin/idle1.out" || ok=false
	grep -q '"ready":9500}' "$bin/idle2.out" || ok=false
	for g in "${gens[@]}"; do
		kill -TERM "$g" 2>/dev/null || true
	done
	for g in "${gens[@]}"; do
		wait "$g" 2>/dev/null || true
	done
	local per
	per=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.0f", (a - b) * 1024 / 19000 }')
	if $ok; then
		printf '{"server":"%s","scenario":"%s","conns":19000,"rss_before_kb":%s,"rss_after_kb":%s,"bytes_per_conn":%s}\n' \
			"$name" "$scenario" "$before" "$after" "$per" >>"$out"
		log "  $name $scenario: 19000 connections, RSS ${before} kB -> ${after} kB, $per B/conn"
		return 0
	fi
	printf '{"server":"%s","scenario":"%s","conns":19000,"failed":true,"error":"idle connections did not all open"}\n' "$name" "$scenario" >>"$out"
	log "  $name idle FAILED: $(cat "$bin/idle1.out" "$bin/idle2.out" | tr '\n' ' ')"
	return 1
}

run_one() {
	local name=$1 scenario=$2
	run_no=$((run_no + 1))
	# shellcheck disable=SC2046
	if ! start_server "$name" $(server_args "$name" "$scenario"); then
		printf '{"server":"%s","scenario":"%s","failed":true,"error":"server failed to start"}\n' "$name" "$scenario" >>"$out"
		return 1
	fi
	local rc=0
	case "$scenario" in
	smoke) load_run "$name" "$scenario" -conns 10 -inflight 4 -size 1024 || rc=$? ;;
	zsmoke) load_run "$name" "$scenario" -conns 10 -inflight 4 -size 1024 -deflate "$deflate_offer" || rc=$? ;;
	64B) load_run "$name" "$scenario" -conns 100 -inflight 16 -size 64 || rc=$? ;;
	1KiB) load_run "$name" "$scenario" -conns 100 -inflight 16 -size 1024 || rc=$? ;;
	16KiB) load_run "$name" "$scenario" -conns 100 -inflight 16 -size 16384 || rc=$? ;;
	1MiB) load_run "$name" "$scenario" -conns 100 -inflight 16 -size 1048576 || rc=$? ;;
	2000x1) load_run "$name" "$scenario" -conns 2000 -inflight 1 -size 64 || rc=$? ;;
	rate20k) load_run "$name" "$scenario" -conns 200 -inflight 16 -rate 20000 -size 64 || rc=$? ;;
	idle) idle_run "$name" "$scenario" || rc=$? ;;
	z1KiB | zc1KiB) load_run "$name" "$scenario" -conns 100 -inflight 16 -size 1024 -deflate "$deflate_offer" || rc=$? ;;
	z16KiB | zc16KiB) load_run "$name" "$scenario" -conns 100 -inflight 16 -size 16384 -deflate "$deflate_offer" || rc=$? ;;
	# Each idle connection first echoes a 40 KiB compressed message: the
	# dials take longer (a goroutine-per-connection server makes a compressor
	# per connection), so they get more time.
	idle-z | idle-zc) idle_run "$name" "$scenario" -deflate "$deflate_offer" -dial-timeout 300s -hold 420s || rc=$? ;;
	*) log "unknown scenario $scenario"; rc=2 ;;
	esac
	if ! kill -0 "$pid" 2>/dev/null; then
		log "  server $name died during $scenario"
		rc=1
	fi
	stop_server
	children=()
	return $rc
}

# --- the runs -----------------------------------------------------------------
total=$((repeats * ${#scenario_list[@]} * ${#server_list[@]}))
step=0
log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg); tree $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
log "runs: $total (servers: ${server_list[*]}; scenarios: ${scenario_list[*]}; repeats: $repeats; ${duration}s windows; server CPU $server_cpu, generator CPU $gen_cpu)"
[ -z "$our_args" ] || log "our echo's extra flags: $our_args"
for ((r = 0; r < repeats; r++)); do
	for scenario in "${scenario_list[@]}"; do
		n=${#server_list[@]}
		for ((i = 0; i < n; i++)); do
			name=${server_list[$(((i + r) % n))]}
			step=$((step + 1))
			if ! supports "$name" "$scenario"; then
				log "[$step/$total] $scenario $name: skipped (no permessage-deflate in its echo server)"
				continue
			fi
			log "[$step/$total] repeat $((r + 1)) $scenario $name"
			run_one "$name" "$scenario" || failures=$((failures + 1))
		done
	done
done

log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
report_args=(-in "$out")
[ -z "$plot" ] || report_args+=(-png "$plot")
"$bin/report" "${report_args[@]}" || failures=$((failures + 1))
log "raw results: $out"
if [ "$failures" -gt 0 ]; then
	log "FAILED: $failures run(s) failed"
	exit 1
fi
log "done"

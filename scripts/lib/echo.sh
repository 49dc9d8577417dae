# Sourced by the scripts that drive a real echo server (interop, soak).
#
#   echo_start NAME DIR [ARGS...]  build ./echo into DIR, start it on a free
#                                  loopback port with ARGS (behind the
#                                  command prefix ECHO_WRAP, e.g. "taskset -c 0",
#                                  which must exec it); sets ECHO_PID and
#                                  ECHO_ADDR, or prints why and exits 1
#   echo_stop NAME                 SIGTERM it and wait; exits 1 unless it
#                                  exits 0 (graceful shutdown)
#   echo_kill                      for an EXIT trap: kill it if still running

ECHO_PID=""
ECHO_ADDR=""

echo_start() {
	local name=$1 dir=$2
	shift 2
	go build -o "$dir/echo" ./echo
	# Port 0: the kernel picks a free port and echo prints the address.
	# shellcheck disable=SC2086 # ECHO_WRAP is a command prefix, in words
	${ECHO_WRAP:-} "$dir/echo" -addr 127.0.0.1:0 -stats 0 "$@" >"$dir/echo.out" 2>"$dir/echo.err" &
	ECHO_PID=$!
	for _ in $(seq 1 100); do
		ECHO_ADDR=$(sed -n 's/^echo: listening on //p' "$dir/echo.out" | head -n1)
		[ -n "$ECHO_ADDR" ] && return 0
		if ! kill -0 "$ECHO_PID" 2>/dev/null; then
			cat "$dir/echo.err" >&2
			echo "FAIL $name: echo exited before listening"
			ECHO_PID=""
			exit 1
		fi
		sleep 0.1
	done
	echo "FAIL $name: echo did not print its address"
	exit 1
}

echo_stop() {
	local name=$1 pid=$ECHO_PID
	ECHO_PID=""
	kill -TERM "$pid"
	if ! wait "$pid"; then
		echo "FAIL $name: echo did not exit 0 after SIGTERM"
		exit 1
	fi
}

echo_kill() {
	if [ -n "$ECHO_PID" ]; then
		kill "$ECHO_PID" 2>/dev/null || true
		wait "$ECHO_PID" 2>/dev/null || true
	fi
}

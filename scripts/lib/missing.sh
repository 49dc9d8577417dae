# shellcheck shell=bash
# missing SCRIPT WHY: a client or tool the test script needs is not
# installed. It prints SKIP and exits 0, except under CI=true (as CI runs
# make test), where it prints FAIL and exits 1: scripts/setup.sh installs
# them all, so CI must not skip.
missing() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL $1: $2 (scripts/setup.sh installs it; CI must not skip)"
		exit 1
	fi
	echo "SKIP $1: $2 (scripts/setup.sh installs it)"
	exit 0
}

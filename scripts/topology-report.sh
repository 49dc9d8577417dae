#!/usr/bin/env bash
# topology-report.sh: build the echo server, print its topology report beside
# `numactl --hardware` and `lstopo`, and check that they agree (the checks
# and the topo/v1 fields: docs/TOPOLOGY.md). One PASS/FAIL/SKIP line per check, then
# "N passed, N failed, N skipped".
#
# usage: scripts/topology-report.sh [--tol PCT] [--json FILE] [-- ECHO-FLAGS...]
#   --tol PCT    memory tolerance in percent (default 2)
#   --json FILE  check a saved topo/v1 report instead of building echo
#   ECHO-FLAGS   passed to `echo -topology -json` (e.g. -numa 0 -workers 4)
# environment:
#   TOPO_REPORT_CMD  a shell command that prints the topo/v1 JSON, used instead
#                    of building ./echo (for testing the script itself)
#   CGO_ENABLED      honoured by the build: CGO_ENABLED=0 checks the sysfs build
#
# exit status: 0 all checks passed, 1 a check failed, 2 bad input or a missing
# tool (go, jq).
set -u

tol=2
json_file=""
while [ $# -gt 0 ]; do
	case "$1" in
	--tol) tol="${2:?--tol needs a value}"; shift 2 ;;
	--json) json_file="${2:?--json needs a file}"; shift 2 ;;
	--) shift; break ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) break ;;
	esac
done

die() { echo "topology-report: $*" >&2; exit 2; }
have() { command -v "$1" >/dev/null 2>&1; }

have jq || die "jq not found (apt-get install jq)"
case "$tol" in ''|*[!0-9.]*) die "bad --tol $tol" ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d) || die "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
report="$tmp/report.json"
text=""

if [ -n "$json_file" ]; then
	cp "$json_file" "$report" || die "cannot read $json_file"
elif [ -n "${TOPO_REPORT_CMD:-}" ]; then
	sh -c "$TOPO_REPORT_CMD" >"$report" || die "TOPO_REPORT_CMD failed: $TOPO_REPORT_CMD"
else
	have go || die "go not found"
	(cd "$root" && go build -o "$tmp/echo" ./echo) || die "go build ./echo failed"
	"$tmp/echo" -topology -json "$@" >"$report" || die "echo -topology -json failed"
	text=$("$tmp/echo" -topology "$@" 2>&1) || text=""
fi

jq -e '.schema == "topo/v1" and (.numa_nodes | length) >= 1' "$report" >/dev/null 2>&1 ||
	die "report is not topo/v1 JSON with at least one node"

# jq helpers: cpus may be a list of numbers or a "0-3,8" cpulist string.
JQDEF='def cpus: if type == "string" then
		[ (if . == "" then empty else split(",")[] end)
		  | if test("-") then (split("-") | map(tonumber)) as [$a, $b] | range($a; $b + 1) else tonumber end ]
	else . end | sort | map(tostring) | join(",");'
q() { jq -r "$JQDEF $1" "$report"; }

passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
skip() { skipped=$((skipped + 1)); echo "SKIP $*"; }
check() { # check NAME GOT WANT
	if [ "$2" = "$3" ]; then pass "$1: $2"; else fail "$1: report $2, expected $3"; fi
}
within() { # within NAME REPORT OTHER: |REPORT-OTHER| <= tol% of OTHER
	if awk -v a="$2" -v b="$3" -v t="$tol" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d * 100 <= t * b) }'; then
		pass "$1: report $2, expected $3 (within $tol%)"
	else
		fail "$1: report $2, expected $3 (more than $tol% apart)"
	fi
}
# spaces or commas to a sorted comma list
canon() { tr ' ,' '\n\n' | grep -v '^$' | sort -n | paste -sd, -; }

echo "== report ($(q '.source'))"
if [ -n "$text" ]; then echo "$text"; else q '.numa_nodes[] | "node \(.id): cpus \(.cpus | cpus), memory \(.memory_bytes) B, distances \(.distances | map(tostring) | join(" "))"'; fi
numactl_out="" lstopo_xml=""
if have numactl; then
	numactl_out=$(numactl --hardware 2>&1) || numactl_out=""
	echo "== numactl --hardware"
	echo "$numactl_out"
fi
lstopo_bin=""
if have lstopo-no-graphics; then lstopo_bin=lstopo-no-graphics; elif have lstopo; then lstopo_bin=lstopo; fi
if [ -n "$lstopo_bin" ]; then
	echo "== $lstopo_bin"
	"$lstopo_bin" --of console 2>&1
	lstopo_xml=$("$lstopo_bin" --of xml 2>/dev/null) || lstopo_xml=""
fi
have hwloc-calc && [ -n "$lstopo_xml" ] && hwloc=1 || hwloc=0
echo "== checks"

node_ids=$(q '[.numa_nodes[].id] | sort | map(tostring) | join(",")')

# --- against numactl --hardware
if [ -n "$numactl_out" ]; then
	n_ids=$(echo "$numactl_out" | sed -n 's/^node \([0-9]*\) cpus:.*/\1/p' | canon)
	n_count=$(echo "$numactl_out" | sed -n 's/^available: \([0-9]*\) nodes.*/\1/p')
	check "numactl node count" "$(q '.numa_nodes | length')" "$n_count"
	check "numactl node ids" "$node_ids" "$n_ids"
	for id in ${n_ids//,/ }; do
		check "numactl node $id cpus" "$(q ".numa_nodes[] | select(.id == $id) | .cpus | cpus")" \
			"$(echo "$numactl_out" | sed -n "s/^node $id cpus:\(.*\)/\1/p" | canon)"
		mib=$(echo "$numactl_out" | sed -n "s/^node $id size: \([0-9]*\) MB/\1/p")
		within "numactl node $id memory MiB" "$(q ".numa_nodes[] | select(.id == $id) | .memory_bytes / 1048576 | floor")" "$mib"
	done
	# distance rows: "  0:  10  21" below "node distances:"
	n_dist=$(echo "$numactl_out" | sed -n '/^node distances:/,$p' | sed -n 's/^ *\([0-9]*\): *\(.*\)/\1:\2/p' |
		awk -F: '{ gsub(/^ +| +$/, "", $2); gsub(/ +/, ",", $2); print $1 ":" $2 }' | sort -n | paste -sd' ' -)
	check "numactl distances" "$(q '[.numa_nodes | sort_by(.id)[] | "\(.id):\(.distances | map(tostring) | join(","))"] | join(" ")')" "$n_dist"
else
	skip "numactl checks: numactl not installed or failed"
fi

# --- against hwloc
if [ "$hwloc" = 1 ]; then
	h_ids=$(hwloc-calc -p -I numa all | canon)
	check "hwloc node ids" "$node_ids" "$h_ids"
	for id in ${h_ids//,/ }; do
		check "hwloc node $id cpus" "$(q ".numa_nodes[] | select(.id == $id) | .cpus | cpus")" \
			"$(hwloc-calc -p -I pu "numa:$id" | canon)"
		within "hwloc node $id memory bytes" "$(q ".numa_nodes[] | select(.id == $id) | .memory_bytes")" \
			"$(hwloc-info -p "numa:$id" | sed -n 's/^ *local memory = \([0-9]*\).*/\1/p')"
		if [ "$(q ".numa_nodes[] | select(.id == $id) | .hugepages[\"2048kB\"] != null")" = true ]; then
			h_huge=$(echo "$lstopo_xml" | awk -v id="$id" '
				/type="NUMANode"/ { cur = ($0 ~ "os_index=\"" id "\"") }
				cur && /<page_type size="2097152"/ { match($0, /count="[0-9]+"/); print substr($0, RSTART + 7, RLENGTH - 8); exit }')
			check "hwloc node $id 2MiB hugepages" "$(q ".numa_nodes[] | select(.id == $id) | .hugepages[\"2048kB\"].total")" "${h_huge:-0}"
		fi
	done
	# distances2 block: indexes (os) and a row-major matrix
	block=$(echo "$lstopo_xml" | sed -n '/<distances2 type="NUMANode"/,/<\/distances2>/p')
	if [ -z "$block" ]; then
		skip "hwloc distances: no NUMANode matrix in lstopo XML (one node has none)"
	else
		idx=$(echo "$block" | sed -n 's/.*<indexes[^>]*>\([^<]*\)<.*/\1/p' | head -1)
		vals=$(echo "$block" | sed -n 's/.*<u64values[^>]*>\([^<]*\)<.*/\1/p' | tr '\n' ' ')
		h_dist=$(awk -v idx="$idx" -v vals="$vals" 'BEGIN {
			n = split(idx, I, " "); split(vals, V, " ")
			for (i = 1; i <= n; i++) for (j = 1; j <= n; j++) D[I[i], I[j]] = V[(i - 1) * n + j]
			for (i = 1; i <= n; i++) S[i] = I[i] + 0
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (S[j] < S[i]) { t = S[i]; S[i] = S[j]; S[j] = t }
			for (i = 1; i <= n; i++) { row = ""; for (j = 1; j <= n; j++) row = row (j > 1 ? "," : "") D[S[i], S[j]]; out = out (i > 1 ? " " : "") S[i] ":" row }
			print out }')
		check "hwloc distances" "$(q '[.numa_nodes | sort_by(.id)[] | "\(.id):\(.distances | map(tostring) | join(","))"] | join(" ")')" "$h_dist"
	fi
	for kind in package core pu; do
		key=${kind}s
		if [ "$(q "has(\"$key\")")" = true ]; then
			check "hwloc $kind count" "$(q ".$key | length")" "$(hwloc-calc --number-of "$kind" all)"
		else
			skip "hwloc $kind count: report has no $key"
		fi
	done
	if [ "$(q 'has("pus")')" = true ]; then
		check "hwloc PU set" "$(q '.pus | cpus')" "$(hwloc-calc -p -I pu all | canon)"
	fi
	if [ "$(q 'has("caches")')" = true ]; then
		for spec in "l1cache:1:Instruction:!=" "l1icache:1:Instruction:==" "l2cache:2:Instruction:!=" "l3cache:3:Instruction:!="; do
			IFS=: read -r name level typ op <<<"$spec"
			# hwloc-calc prints nothing for a type the machine lacks
			h_n=$(hwloc-calc --number-of "$name" all 2>/dev/null) || h_n=""
			check "hwloc $name instances" "$(q "[.caches[] | select(.level == $level and .type $op \"$typ\")] | length")" "${h_n:-0}"
		done
	else
		skip "hwloc caches: report has no caches"
	fi
	while IFS=$'\t' read -r name node local; do
		[ -n "$name" ] || continue
		if ! h_pus=$(hwloc-calc -p -I pu "os=$name" 2>/dev/null) || [ -z "$h_pus" ]; then
			skip "device $name: hwloc does not know it"
			continue
		fi
		if [ "$node" -ge 0 ]; then
			check "device $name node" "$node" "$(hwloc-calc -p -I numa "os=$name" | canon)"
		else
			pass "device $name: no numa affinity (not compared with hwloc, which attaches it to the machine)"
		fi
		if [ -n "$local" ]; then
			extra=$(comm -23 <(echo "$local" | tr , '\n' | sort) <(echo "$h_pus" | tr , '\n' | sort) | paste -sd, -)
			if [ -z "$extra" ]; then pass "device $name local cpus $local within hwloc's $h_pus"
			else fail "device $name local cpus $local: $extra outside hwloc's $h_pus"; fi
		fi
	done < <(q '(.devices // [])[] | [.name, .numa_node, ((.local_cpus // []) | cpus)] | @tsv')
else
	skip "hwloc checks: lstopo or hwloc-calc not installed"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
exit 0

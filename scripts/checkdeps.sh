#!/usr/bin/env bash
# Checks that every package imports only what the layering allows, in every
# build variant (linux with and without cgo, windows, darwin):
#
#   echo -> ws -> reactor -> hugepage -> cnuma,  topology -> cnuma
#
# (the reactor reads topology and pins threads through cnuma directly),
# and that third-party modules enter only where they are meant to: x/sys in
# the system layers, gobwas/ws in the protocol, klauspost/compress only in
# ws/internal/deflate, Prometheus only in ws/wsmetrics (importing ws must
# bring no metrics stack). Test files may
# import what they like, but never echo or a tool. The programs under cmd/
# and scripts/ are tools: they may import any package of ours, and nothing
# imports them.
#
#   scripts/checkdeps.sh              check the tree
#   scripts/checkdeps.sh --self-test  plant wrong arrows (through go list
#                                     -overlay, the tree is not touched) and
#                                     check that each one is caught
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
mod=$(go list -m)

# allowed[pkg]: the project packages pkg may import (a prefix ending in /
# allows a whole subtree); thirdparty[pkg]: the module paths it may import.
declare -A allowed=(
  [cnuma]=""
  [topology]="cnuma"
  [hugepage]="cnuma internal/stack"
  [reactor]="cnuma hugepage topology internal/ring internal/stack internal/uring"
  [ws]="reactor hugepage topology internal/stack ws/internal/"
  [ws/internal/wire]=""
  [ws/internal/deflate]=""
  [ws/wsmetrics]="ws"
  [echo]="ws ws/wsmetrics topology"
  [internal/ring]=""
  [internal/stack]=""
  [internal/uring]=""
  [internal/wstest]=""
  [internal/sysfstest]=""
  [internal/testenv]=""
)
declare -A thirdparty=(
  [cnuma]="golang.org/x/sys"
  [topology]="golang.org/x/sys"
  [hugepage]="golang.org/x/sys"
  [reactor]="golang.org/x/sys"
  [ws]="github.com/gobwas/ws golang.org/x/sys"
  [ws/internal/wire]="github.com/gobwas/ws"
  [ws/internal/deflate]="github.com/klauspost/compress"
  [ws/wsmetrics]="github.com/prometheus/client_golang"
  [echo]=""
  [internal/ring]="golang.org/x/sys"
  [internal/stack]="golang.org/x/sys"
  [internal/uring]="golang.org/x/sys"
  [internal/wstest]="github.com/gobwas/ws github.com/stretchr/testify"
  [internal/testenv]="golang.org/x/sys"
)
variants=("linux 1" "linux 0" "windows 0" "darwin 0")

# listed WORD LIST: is WORD in LIST, or under a LIST entry that ends in "/"?
listed() {
  local w=$1 a
  for a in $2; do
    [ "$w" = "$a" ] && return 0
    case $a in */) case $w in "$a"*) return 0 ;; esac ;; esac
  done
  return 1
}

# check_variant GOOS CGO [overlay]: prints one line per wrong arrow.
check_variant() {
  local goos=$1 cgo=$2 overlay=${3:-} pkg imports testimports rel irel
  local args=(-f '{{.ImportPath}}|{{join .Imports " "}}|{{join .TestImports " "}} {{join .XTestImports " "}}')
  [ -n "$overlay" ] && args+=(-overlay "$overlay")
  while IFS='|' read -r pkg imports testimports; do
    rel=${pkg#"$mod"/}
    [ "$pkg" = "$mod" ] && rel=.
    case $rel in cmd/* | scripts/*) tool=1 ;; *) tool=0 ;; esac
    if [ $tool = 0 ] && [ -z "${allowed[$rel]+x}" ]; then
      echo "checkdeps: $rel is not in the table: add it with its allowed imports"
    fi
    for imp in $testimports; do
      case $imp in "$mod"/echo | "$mod"/cmd/* | "$mod"/scripts/*)
        echo "checkdeps: $goos/cgo=$cgo: tests of $rel import ${imp#"$mod"/} (a command)" ;;
      esac
    done
    for imp in $imports; do
      case $imp in
        "$mod"/*)
          irel=${imp#"$mod"/}
          case $irel in echo | cmd/* | scripts/*)
            echo "checkdeps: $goos/cgo=$cgo: $rel imports $irel (a command)"; continue ;;
          esac
          [ $tool = 1 ] && continue
          if [ -n "${allowed[$rel]+x}" ] && ! listed "$irel" "${allowed[$rel]}"; then
            echo "checkdeps: $goos/cgo=$cgo: $rel imports $irel (not allowed)"
          fi
          ;;
        *.*/*)
          [ $tool = 1 ] && continue
          local ok=0 m
          for m in ${thirdparty[$rel]-}; do
            case $imp in "$m" | "$m"/*) ok=1 ;; esac
          done
          [ $ok = 1 ] || echo "checkdeps: $goos/cgo=$cgo: $rel imports $imp (third-party, not allowed here)"
          ;;
      esac
    done
  done < <(GOOS=$goos CGO_ENABLED=$cgo go list -e "${args[@]}" ./...)
}

check_all() {
  local v
  for v in "${variants[@]}"; do
    # shellcheck disable=SC2086
    check_variant $v "${1:-}"
  done | sort -u
}

self_test() {
  local tmp fails=0
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  # Each plant: a file added to a package (its name may carry a GOOS), its
  # source, and the message that must catch it.
  local -a plants=(
    "hugepage/zz_planted.go|package hugepage; import _ \"$mod/topology\"|hugepage imports topology (not allowed)"
    "reactor/zz_planted.go|package reactor; import _ \"github.com/gobwas/ws\"|reactor imports github.com/gobwas/ws (third-party"
    "ws/zz_planted_deflate.go|package ws; import _ \"github.com/klauspost/compress/flate\"|ws imports github.com/klauspost/compress/flate (third-party"
    "ws/zz_planted.go|package ws; import _ \"github.com/prometheus/client_golang/prometheus\"|ws imports github.com/prometheus/client_golang/prometheus (third-party"
    "topology/zz_planted_windows.go|package topology; import _ \"$mod/hugepage\"|windows/cgo=0: topology imports hugepage (not allowed)"
    "cnuma/zz_planted_test.go|package cnuma; import _ \"$mod/echo\"|tests of cnuma import echo (a command)"
  )
  local p file src want out i=0
  for p in "${plants[@]}"; do
    IFS='|' read -r file src want <<<"$p"
    i=$((i + 1))
    printf '%s\n' "$src" >"$tmp/plant$i.go"
    printf '{"Replace":{"%s/%s":"%s/plant%d.go"}}' "$PWD" "$file" "$tmp" "$i" >"$tmp/overlay$i.json"
    out=$(check_all "$tmp/overlay$i.json")
    if grep -qF "$want" <<<"$out"; then
      echo "checkdeps self-test: caught: $want"
    else
      echo "checkdeps self-test: MISSED a planted arrow: $want"
      fails=1
    fi
  done
  [ -z "$(check_all)" ] || { echo "checkdeps self-test: the tree itself does not pass"; fails=1; }
  return $fails
}

if [ "${1:-}" = "--self-test" ]; then
  self_test
  exit
fi
out=$(check_all)
if [ -n "$out" ]; then
  echo "$out"
  exit 1
fi
echo "checkdeps: ${#variants[@]} build variants, $(go list ./... | wc -l) packages: every import allowed"

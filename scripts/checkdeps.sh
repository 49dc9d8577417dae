#!/usr/bin/env bash
# Fails when a package imports a project package that STYLE.md's table does
# not allow: echo -> ws -> reactor -> hugepage -> cnuma, topology -> cnuma,
# reactor and ws may read topology, internal/* and cnuma import nothing of ours.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
declare -A allowed=(
  [cnuma]=""
  [topology]="cnuma"
  [hugepage]="cnuma internal"
  [reactor]="hugepage topology internal cnuma"
  [ws]="reactor hugepage topology internal"
  [echo]="ws topology hugepage reactor"
  [internal]=""
)
bad=0
while read -r pkg imports; do
  pkg=${pkg%:}
  rel=${pkg#"$mod"/}
  top=${rel%%/*}
  [ "$pkg" = "$mod" ] && continue
  for imp in $imports; do
    case $imp in "$mod"/*) ;; *) continue ;; esac
    irel=${imp#"$mod"/}
    itop=${irel%%/*}
    [ "$itop" = "$top" ] && continue
    ok=0
    for a in ${allowed[$top]-}; do [ "$a" = "$itop" ] && ok=1; done
    if [ $ok -eq 0 ]; then echo "checkdeps: $rel imports $irel (not allowed)"; bad=1; fi
  done
done < <(go list -f '{{.ImportPath}}: {{join .Imports " "}}' ./...)
exit $bad

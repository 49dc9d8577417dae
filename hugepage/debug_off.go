//go:build !hugepagedebug

package hugepage

// debug is false without -tags hugepagedebug: no holder records, no poison.
const debug = false

type slotDebug struct{}

func debugInit(*class)         {}
func debugGet(*class, uint32)  {}
func debugPut(*class, uint32)  {}
func debugHolder(*slot) string { return "" }

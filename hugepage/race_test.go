//go:build race

package hugepage

func init() { raceEnabled = true }

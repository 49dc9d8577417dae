//go:build !linux

package testenv

import "testing"

// FreeHugePages fails the test: huge page counts are read from Linux's
// /proc/meminfo.
func FreeHugePages(t testing.TB) int {
	t.Helper()
	t.Fatal("testenv: FreeHugePages is Linux-only")
	return 0
}

// ReserveHugePages skips: reserving huge pages is a Linux knob (Windows
// large pages need a privilege, which TestArenaLargePages checks).
func ReserveHugePages(t testing.TB, n int) {
	t.Helper()
	t.Skip("reserving huge pages is a Linux knob (vm.nr_hugepages)")
}

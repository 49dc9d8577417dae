// Package testenv tells tests about the environment they run in, where the
// answer changes what a test may check: the race detector (allocation counts
// are not reliable under it) and wine (which lacks some Windows calls); and
// it reserves huge pages for the tests that need them (Linux, as root),
// skipping only when the reservation cannot be made, so that a test that
// gets past it can require hugetlb memory.
package testenv

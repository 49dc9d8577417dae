// Package testenv tells tests about the environment they run in, where the
// answer changes what a test may check: the race detector (allocation counts
// are not reliable under it) and wine (which lacks some Windows calls); and
// it makes the environment a test needs: a seccomp filter that refuses
// system calls as a container's would (DenySyscalls, Linux), and it
// reserves huge pages for the tests that need them (Linux, as root),
// skipping only when the reservation cannot be made, so that a test that
// gets past it can require hugetlb memory. It counts what a test must find
// given back: the process's open handles (OpenHandles).
package testenv

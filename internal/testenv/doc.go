// Package testenv tells tests about the environment they run in, where the
// answer changes what a test may check: the race detector (allocation counts
// are not reliable under it) and wine (which lacks some Windows calls).
package testenv

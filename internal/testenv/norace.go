//go:build !race

package testenv

// RaceEnabled says the race detector is on: allocation counts are not
// reliable then, so tests that assert them skip.
const RaceEnabled = false

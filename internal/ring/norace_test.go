package ring

// raceEnabled is set by race_test.go: allocation counts are not reliable
// under the race detector.
var raceEnabled bool

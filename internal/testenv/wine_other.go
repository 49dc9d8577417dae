//go:build !windows

package testenv

// WineVersion is "": wine runs Windows programs only.
func WineVersion() string { return "" }

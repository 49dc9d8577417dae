//go:build !linux

package ws

func allowedCPUs() ([]int, error) { return fallbackCPUs(), nil }

//go:build !linux

package main

// renice and pinTo do nothing here: the soak's figures are taken on Linux.
func renice()   {}
func pinTo(int) {}

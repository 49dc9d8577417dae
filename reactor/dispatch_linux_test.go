//go:build !noreactor

package reactor

import "testing"

// The Linux hooks dispatch once per call through the poller's engine, a
// linuxEngine interface (poll_linux.go). BenchmarkHookDispatch measures
// that indirect call against the alternatives the contract's design
// weighed: a direct (inlinable) call, as with one engine per platform, and
// a switch on the engine's kind in every hook. The hook called does
// nothing (the io_uring engine's stopInput), so the figures are the cost
// of reaching it.
func BenchmarkHookDispatch(b *testing.B) {
	c := &Conn{}
	b.Run("interface", func(b *testing.B) {
		for range b.N {
			dispatchEngine.stopInput(c)
		}
	})
	b.Run("direct", func(b *testing.B) {
		for range b.N {
			dispatchURing.stopInput(c)
		}
	})
	b.Run("switch", func(b *testing.B) {
		for range b.N {
			switch dispatchKind {
			case IOURing:
				dispatchURing.stopInput(c)
			default:
				dispatchEpoll.stopInput(c)
			}
		}
	})
}

// Package variables, so that the compiler cannot see through them.
var (
	dispatchEngine linuxEngine = &uringEngine{}
	dispatchEpoll              = &epollEngine{}
	dispatchURing              = &uringEngine{}
	dispatchKind               = IOURing
)

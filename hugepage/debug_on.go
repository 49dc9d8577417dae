//go:build hugepagedebug

package hugepage

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
)

// debug is true with -tags hugepagedebug: each slot records the code that got
// it and released it last, released buffers are poisoned, and Get checks the
// poison (the idea of nbio's mempool/trace_debugger.go).
const debug = true

// poison fills released buffers; a Get that finds other bytes knows that
// someone wrote through a slice kept after Release.
const poison = 0xdb

type slotDebug struct {
	getPC     atomic.Uintptr
	releasePC atomic.Uintptr
}

func debugInit(c *class) {
	c.debug = make([]slotDebug, len(c.slots))
	for i := range c.mem {
		c.mem[i] = poison
	}
}

// debugGet checks the poison of slot i, just taken by get with one reference.
// On a mismatch it puts the slot back, re-poisoned, and panics.
func debugGet(c *class, i uint32) {
	off := int(i) * c.size
	for j, v := range c.mem[off : off+c.size] {
		if v != poison {
			msg := fmt.Sprintf("hugepage: buffer of class %d written at offset %d after its Release%s",
				c.size, j, debugHolder(&c.slots[i]))
			debugPut(c, i)
			s := &c.slots[i]
			s.state.Store(s.state.Load() &^ (1<<32 - 1))
			c.free.Push(i)
			panic(msg)
		}
	}
	c.debug[i].getPC.Store(caller())
}

func debugPut(c *class, i uint32) {
	c.debug[i].releasePC.Store(caller())
	off := int(i) * c.size
	for j := range c.mem[off : off+c.size] {
		c.mem[off+j] = poison
	}
}

// debugHolder names the last getter and releaser of s for panic messages.
func debugHolder(s *slot) string {
	d := &s.cls.debug[s.idx]
	return fmt.Sprintf(" (got at %s, last released at %s)", where(d.getPC.Load()), where(d.releasePC.Load()))
}

// caller returns the PC of the first frame outside this package's own
// (non-test) files: the code that called Get or Release.
func caller() uintptr {
	var pcs [8]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !isOwn(f.File) || !more {
			return f.PC
		}
	}
}

func isOwn(file string) bool {
	dir, name := filepath.Split(file)
	return filepath.Base(dir) == "hugepage" && !strings.HasSuffix(name, "_test.go")
}

func where(pc uintptr) string {
	if pc == 0 {
		return "?"
	}
	f, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	return fmt.Sprintf("%s:%d", f.File, f.Line)
}

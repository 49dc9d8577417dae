//go:build hugepagedebug

package hugepage

import (
	"strings"
	"testing"
)

// TestDebugWriteAfterRelease: a slice kept from Bytes and written after the
// Release is found by the next Get of that slot, which names the holder.
func TestDebugWriteAfterRelease(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	b, _ := p.Get(64)
	kept := b.Bytes()
	b.Release()
	kept[3] = 'x' // the bug under test
	msg := mustPanic(t, func() { _, _ = p.Get(64) })
	if !strings.Contains(msg, "written at offset 3 after its Release") || !strings.Contains(msg, "debug_test.go") {
		t.Fatalf("panic %q", msg)
	}
	// The slot went back re-poisoned: the next Get succeeds.
	c, err := p.Get(64)
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
}

func TestDebugNamesHolder(t *testing.T) {
	p := newPool(t, Config{Node: -1})
	b, _ := p.Get(64)
	b.Release()
	msg := mustPanic(t, b.Release)
	if !strings.Contains(msg, "got at") || !strings.Contains(msg, "debug_test.go") {
		t.Fatalf("panic %q does not name the holder", msg)
	}
}

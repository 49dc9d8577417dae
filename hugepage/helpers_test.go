package hugepage

import (
	"testing"
)

// smallClasses keeps test arenas small (4 MiB) on a shared machine.
var smallClasses = []Class{{64, 64}, {4096, 16}, {64 << 10, 8}, {1 << 20, 2}}

// newPool builds a pool for the test and checks at cleanup that every buffer
// came back and the arena unmaps.
func newPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	if cfg.Classes == nil {
		cfg.Classes = smallClasses
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if n := p.InUse(); n != 0 {
			t.Errorf("leak: %d buffers still in use at cleanup", n)
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// mustPanic runs f and returns the panic message, failing if f returns.
func mustPanic(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("no panic")
		}
		msg, _ = r.(string)
		if msg == "" {
			msg = "non-string panic"
		}
	}()
	f()
	return ""
}

// newRegion reserves a region of size bytes on node 0 for the test, freed
// at cleanup.
func newRegion(t testing.TB, size int) *Region {
	t.Helper()
	r, err := Reserve(size, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Free() })
	return r
}

package hugepage_test

import (
	"errors"
	"fmt"

	"github.com/hioload-ws/hioload-ws/hugepage"
)

// A reactor loop's use of a pool: a Cache on the loop goroutine, a read
// buffer per read, a second reference for a write queue, and a leak check at
// shutdown.
func Example() {
	p, err := hugepage.New(hugepage.Config{
		Node:    -1, // no binding in this example; a loop passes its node
		Classes: []hugepage.Class{{Size: 64 << 10, Count: 4}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	c := p.NewCache() // one per loop, used only on the loop goroutine

	b, err := c.Get(64 << 10) // the read buffer
	if err != nil {
		fmt.Println(err)
		return
	}
	n := copy(b.Bytes(), "hello") // stands in for read(2)
	payload := b.Bytes()[:n]      // parsed and echoed in place
	b.Retain()                    // the unsent tail stays queued
	c.Release(b)                  // the loop is done with it
	fmt.Println(string(payload), p.InUse())
	b.Release() // the write queue drained, from any goroutine

	var held []hugepage.Buffer
	for range 5 {
		b, err := p.Get(64 << 10)
		if errors.Is(err, hugepage.ErrExhausted) {
			fmt.Println("exhausted: never blocks")
			continue
		}
		held = append(held, b)
	}
	fmt.Println(p.Close()) // refuses: unmapping under holders would crash
	for _, b := range held {
		b.Release()
	}
	c.Flush()
	fmt.Println(p.InUse(), p.Close()) // the leak check, then the unmap
	// Output:
	// hello 1
	// exhausted: never blocks
	// hugepage: buffers still in use: 4 buffers on node -1
	// 0 <nil>
}

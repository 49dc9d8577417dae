// Package stack holds Treiber, a lock-free LIFO of slot indexes: the free list
// of every size class in hugepage's slab pools.
//
// Treiber is R. K. Treiber's stack ("Systems Programming: Coping with
// Parallelism", IBM Research Report RJ 5118, 1986): push links the new node to
// the current head and swings the head with a CAS; pop reads the head's
// successor and swings the head to it with a CAS. Reusing nodes makes the pop
// vulnerable to ABA (head A is popped and pushed back between our read of
// A.next and our CAS, which then succeeds with a stale successor), so the head
// packs a 32-bit generation next to the index and every successful CAS bumps
// it: the modification counter of IBM System/370's compare-double-and-swap
// free lists, as discussed by Michael & Scott, "Simple, Fast, and Practical
// Non-Blocking and Blocking Concurrent Queue Algorithms" (PODC 1996). A pop
// can be fooled only if its head word comes back with the same generation,
// which takes 2^32 successful operations between its load and its CAS.
//
// The stack stores indexes, not pointers: the memory it manages is mapped
// outside the Go heap and must hold no Go pointers, so the links live in a Go
// slice of atomics indexed by slot.
//
//	free := stack.NewTreiberFull(n) // every index in [0, n) is free
//	i, ok := free.Pop()             // take a slot; false when all are in use
//	if ok {
//		// ... use slot i, then give it back:
//		free.Push(i)
//	}
package stack

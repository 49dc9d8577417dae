package stack

import (
	"sync"
	"testing"
)

// The benchmarks compare the Treiber free list with the two obvious
// alternatives for a free list of slot indexes: a buffered channel and a
// mutex-guarded slice. Each op is one take and one give-back.

const benchSlots = 1024

type mutexStack struct {
	mu   sync.Mutex
	free []uint32
}

func (m *mutexStack) pop() (uint32, bool) {
	m.mu.Lock()
	n := len(m.free)
	if n == 0 {
		m.mu.Unlock()
		return 0, false
	}
	i := m.free[n-1]
	m.free = m.free[:n-1]
	m.mu.Unlock()
	return i, true
}

func (m *mutexStack) push(i uint32) {
	m.mu.Lock()
	m.free = append(m.free, i)
	m.mu.Unlock()
}

type freeList struct {
	pop  func() (uint32, bool)
	push func(uint32)
}

func freeLists() []struct {
	name string
	make func() freeList
} {
	return []struct {
		name string
		make func() freeList
	}{
		{"treiber", func() freeList {
			s := NewTreiberFull(benchSlots)
			return freeList{s.Pop, s.Push}
		}},
		{"chan", func() freeList {
			c := make(chan uint32, benchSlots)
			for i := 0; i < benchSlots; i++ {
				c <- uint32(i)
			}
			return freeList{
				func() (uint32, bool) {
					select {
					case i := <-c:
						return i, true
					default:
						return 0, false
					}
				},
				func(i uint32) { c <- i },
			}
		}},
		{"mutex", func() freeList {
			m := &mutexStack{free: make([]uint32, 0, benchSlots)}
			for i := 0; i < benchSlots; i++ {
				m.free = append(m.free, uint32(i))
			}
			return freeList{m.pop, m.push}
		}},
	}
}

func BenchmarkFreeList(b *testing.B) {
	for _, fl := range freeLists() {
		b.Run(fl.name+"/single", func(b *testing.B) {
			l := fl.make()
			b.ReportAllocs()
			for b.Loop() {
				i, ok := l.pop()
				if !ok {
					b.Fatal("empty")
				}
				l.push(i)
			}
		})
		b.Run(fl.name+"/parallel", func(b *testing.B) {
			l := fl.make()
			b.ReportAllocs()
			b.SetParallelism(4) // more goroutines than our 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i, ok := l.pop()
					if !ok {
						continue
					}
					l.push(i)
				}
			})
		})
	}
}

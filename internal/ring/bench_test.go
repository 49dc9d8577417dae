package ring

import (
	"runtime"
	"sync"
	"testing"
)

// The benchmarks move values through MPMC, a buffered channel and a
// mutex-guarded slice queue of the same capacity. Same pushes and pops on one
// goroutine (the reactor's own inbox use when a loop posts to itself);
// ProducerConsumer has one producer and one consumer goroutine; MPMC runs
// RunParallel with 4 goroutines per CPU, each pushing then popping.

const benchCap = 1024

type queue interface {
	Push(uint64) bool
	Pop() (uint64, bool)
}

type chanQueue chan uint64

func (c chanQueue) Push(v uint64) bool {
	select {
	case c <- v:
		return true
	default:
		return false
	}
}

func (c chanQueue) Pop() (uint64, bool) {
	select {
	case v := <-c:
		return v, true
	default:
		return 0, false
	}
}

// mutexQueue is a ring guarded by one mutex.
type mutexQueue struct {
	mu         sync.Mutex
	head, tail uint64
	buf        []uint64
}

func (m *mutexQueue) Push(v uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tail-m.head == uint64(len(m.buf)) {
		return false
	}
	m.buf[m.tail%uint64(len(m.buf))] = v
	m.tail++
	return true
}

func (m *mutexQueue) Pop() (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tail == m.head {
		return 0, false
	}
	v := m.buf[m.head%uint64(len(m.buf))]
	m.head++
	return v, true
}

var queues = []struct {
	name string
	make func() queue
}{
	{"mpmc", func() queue { return NewMPMC[uint64](benchCap) }},
	{"chan", func() queue { return make(chanQueue, benchCap) }},
	{"mutex", func() queue { return &mutexQueue{buf: make([]uint64, benchCap)} }},
}

func BenchmarkQueueSame(b *testing.B) {
	for _, q := range queues {
		b.Run(q.name, func(b *testing.B) {
			qq := q.make()
			b.ReportAllocs()
			for b.Loop() {
				qq.Push(1)
				qq.Pop()
			}
		})
	}
}

func BenchmarkQueueProducerConsumer(b *testing.B) {
	for _, q := range queues {
		b.Run(q.name, func(b *testing.B) {
			qq := q.make()
			b.ReportAllocs()
			n := b.N
			done := make(chan struct{})
			go func() {
				for got := 0; got < n; {
					if _, ok := qq.Pop(); ok {
						got++
					} else {
						runtime.Gosched()
					}
				}
				close(done)
			}()
			for i := 0; i < n; i++ {
				for !qq.Push(uint64(i)) {
					runtime.Gosched()
				}
			}
			<-done
		})
	}
}

func BenchmarkQueueMPMC(b *testing.B) {
	for _, q := range queues {
		b.Run(q.name, func(b *testing.B) {
			qq := q.make()
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if qq.Push(1) {
						for {
							if _, ok := qq.Pop(); ok {
								break
							}
						}
					}
				}
			})
		})
	}
}

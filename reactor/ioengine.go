package reactor

import (
	"fmt"
	"os"

	"github.com/hioload-ws/hioload-ws/hugepage"
)

// IOEngine names the kernel interface a loop waits and moves bytes with.
type IOEngine string

// The engines. On Linux, auto (or "") is io_uring where the kernel has
// what the engine needs and epoll elsewhere (ChooseIOEngine says why); an
// explicit uring fails where the kernel lacks it. On Windows every engine
// is IOCP.
const (
	IOAuto  IOEngine = "auto"
	IOEpoll IOEngine = "epoll"
	IOURing IOEngine = "uring"
	IOIOCP  IOEngine = "iocp"
)

// EngineEnv is the environment variable that overrides auto: set to epoll
// or uring it forces that engine wherever Config.IOEngine is auto or empty
// (the test suites and the soak run once per engine that way).
const EngineEnv = "HIOLOAD_ENGINE"

// ParseIOEngine checks a name from a flag or a config file.
func ParseIOEngine(s string) (IOEngine, error) {
	switch e := IOEngine(s); e {
	case "", IOAuto:
		return IOAuto, nil
	case IOEpoll, IOURing, IOIOCP:
		return e, nil
	}
	return "", fmt.Errorf("reactor: io engine %q: want auto, epoll or uring", s)
}

// ChooseIOEngine resolves want to the engine New would run on this
// machine: auto (after EngineEnv) becomes an engine the kernel supports,
// and why says why a better one was not taken ("" when nothing was given
// up). An explicit engine the platform or the kernel lacks is an
// error. It probes the kernel (on Linux one io_uring_setup and a few
// io_uring_register calls), so call it once and pass the result on in
// Config.IOEngine.
func ChooseIOEngine(want IOEngine) (got IOEngine, why string, err error) {
	if want == "" || want == IOAuto {
		if env := os.Getenv(EngineEnv); env != "" {
			e, err := ParseIOEngine(env)
			if err != nil {
				return "", "", fmt.Errorf("%s: %w", EngineEnv, err)
			}
			want = e
		}
	}
	if want, err = ParseIOEngine(string(want)); err != nil {
		return "", "", err
	}
	return chooseIOEngine(want)
}

// The io_uring engine's provided buffers (uring_recv_linux.go).
const (
	uringBufs    = 64       // buffers per loop (IDs 0..63)
	uringBufSize = 64 << 10 // bytes each: 4 MiB per loop
	// uringRecvLimit is what a connection's multishot receive takes
	// before it ends and is armed again, the next turn: a turn's share, a
	// read buffer's worth as an epoll loop reads (the receive that reaches
	// it may take the rest of its buffer too: up to twice this). Without it one enter
	// fills every provided buffer from a few flooding clients (the
	// kernel receives up to 32 times per wakeup), the receives of the
	// others end with ENOBUFS, and a turn lasts as long as handling 4 MiB
	// takes.
	uringRecvLimit = uringBufSize
)

// LoopBuffers is the pool memory each loop of engine io keeps for its
// receives: Count buffers of Size bytes, to add to the pool of the loop's
// node (the io_uring engine's provided buffers; none for epoll and IOCP,
// whose loops read into one buffer of Config.ReadBufferSize).
func LoopBuffers(io IOEngine) hugepage.Class {
	if io == IOURing {
		return hugepage.Class{Size: uringBufSize, Count: uringBufs}
	}
	return hugepage.Class{}
}

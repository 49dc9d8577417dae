//go:build !noreactor

package reactor

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hioload-ws/hioload-ws/internal/uring"
)

// chooseIOEngine: epoll when asked; io_uring when asked or auto, if the
// kernel has what the engine needs (probeURing); else an error when asked,
// and epoll for auto, saying why.
func chooseIOEngine(want IOEngine) (IOEngine, string, error) {
	switch {
	case want == IOEpoll:
		return IOEpoll, "", nil
	case want == IOIOCP:
		return "", "", errors.New("reactor: io engine iocp: Windows only")
	}
	err := probeURing()
	switch {
	case err == nil:
		return IOURing, "", nil
	case want == IOURing:
		return "", "", fmt.Errorf("reactor: io engine uring: %w", err)
	}
	return IOEpoll, err.Error(), nil
}

// probeURing is the kernel check (a variable so that tests can make it
// fail).
var probeURing = probeURingKernel

// uringOps are the operations the engine submits.
var uringOps = []struct {
	op   uint8
	name string
}{
	{uring.OpAccept, "ACCEPT"}, {uring.OpRecv, "RECV"}, {uring.OpSend, "SEND"},
	{uring.OpSendmsg, "SENDMSG"}, {uring.OpRead, "READ"}, {uring.OpAsyncCancel, "ASYNC_CANCEL"},
	{uring.OpClose, "CLOSE"}, {uring.OpNop, "NOP"},
}

// probeURingKernel sets up a ring as a loop's (single issuer, deferred
// task work, no SQ array: Linux 6.6), asks the kernel for every opcode
// the engine uses (IORING_REGISTER_PROBE) and registers an incrementally
// consumed buffer ring (Linux 6.12), then closes it. The error says what
// is missing, in words a log reader can act on.
func probeURingKernel() error {
	r, err := uring.New(4, &uring.Params{Flags: uring.SetupRDisabled | uring.SetupSingleIssuer |
		uring.SetupDeferTaskrun | uring.SetupNoSQArray | uring.SetupSubmitAll})
	switch {
	case errors.Is(err, unix.ENOSYS):
		return errors.New("io_uring: the kernel has no io_uring (ENOSYS)")
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("io_uring: io_uring_setup refused (EPERM): %s", uringRefusal())
	case errors.Is(err, unix.EINVAL):
		return errors.New("io_uring: the kernel lacks the ring flags the engine needs (single issuer, deferred task work, no SQ array: Linux 6.6)")
	case err != nil:
		return fmt.Errorf("io_uring: %w", err)
	}
	defer r.Close()
	p, err := r.Probe()
	if err != nil {
		return fmt.Errorf("io_uring: %w", err)
	}
	var missing []string
	for _, o := range uringOps {
		if !p.Supports(o.op) {
			missing = append(missing, "IORING_OP_"+o.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("io_uring: the kernel lacks %s", strings.Join(missing, ", "))
	}
	br, err := r.RegisterBufRing(1, 0, uring.PbufRingInc)
	if err != nil {
		return fmt.Errorf("io_uring: no incrementally consumed buffer rings (IOU_PBUF_RING_INC, Linux 6.12): %w", err)
	}
	return br.Unregister()
}

// uringRefusal says who refused io_uring_setup: the io_uring_disabled
// sysctl, or else (most likely) a seccomp profile such as Docker's default.
func uringRefusal() string {
	b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	switch v := strings.TrimSpace(string(b)); {
	case err == nil && v == "2":
		return "kernel.io_uring_disabled=2"
	case err == nil && v == "1":
		return "kernel.io_uring_disabled=1 and this process is not in kernel.io_uring_group"
	}
	return "a seccomp profile (Docker's default refuses io_uring) or an LSM"
}

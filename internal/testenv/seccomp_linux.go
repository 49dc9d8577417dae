package testenv

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DenySyscalls makes the system calls numbered nrs fail with EPERM in this
// process, on every thread and for good: a seccomp filter (installed with
// SECCOMP_FILTER_FLAG_TSYNC after PR_SET_NO_NEW_PRIVS) like the ones
// container runtimes apply (Docker's default profile refuses mbind and
// io_uring_setup, for instance). Tests call it in a child process they
// judge from outside. The numbers are the calling architecture's.
func DenySyscalls(nrs ...uintptr) error {
	prog := []unix.SockFilter{{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}} // seccomp_data.nr
	for i, nr := range nrs {
		prog = append(prog, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K,
			K: uint32(nr), Jt: uint8(len(nrs) - i), Jf: 0})
	}
	prog = append(prog,
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)})
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("seccomp: %w", e)
	}
	return nil
}

//go:build linux && cgo

package cnuma

/*
#cgo LDFLAGS: -lnuma
#include <errno.h>
#include <stdlib.h>
#include <numa.h>

// libnuma calls numa_error when a system call inside it fails (for example mbind
// refused by seccomp inside numa_alloc_onnode) and its default prints to stderr
// and goes on. This definition overrides that weak symbol: it remembers the call
// and errno for the calling thread instead, so the Go side can report it.
static __thread const char *cnuma_err_where;
static __thread int cnuma_err_errno;

void numa_error(char *where) {
	cnuma_err_where = where;
	cnuma_err_errno = errno;
}

static void cnuma_err_clear(void) { cnuma_err_where = NULL; cnuma_err_errno = 0; }
static const char *cnuma_err_call(void) { return cnuma_err_where; }
static int cnuma_err_code(void) { return cnuma_err_errno; }

// cnuma_node_exists is 1 when node is in numa_nodes_ptr (the nodes of this system).
static int cnuma_node_exists(int node) {
	if (numa_nodes_ptr == NULL) return 0;
	return numa_bitmask_isbitset(numa_nodes_ptr, (unsigned int)node);
}

// cnuma_node_cpus fills out (cap entries) with node's CPUs and returns how many,
// or -1 with errno set.
static int cnuma_node_cpus(int node, int *out, int cap) {
	struct bitmask *m = numa_allocate_cpumask();
	if (m == NULL) return -1;
	if (numa_node_to_cpus(node, m) < 0) {
		int e = errno;
		numa_free_cpumask(m);
		errno = e;
		return -1;
	}
	int n = 0;
	for (unsigned int c = 0; c < m->size; c++) {
		if (numa_bitmask_isbitset(m, c)) {
			if (n == cap) { numa_free_cpumask(m); errno = ERANGE; return -1; }
			out[n++] = (int)c;
		}
	}
	numa_free_cpumask(m);
	return n;
}
*/
import "C"

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// libnuma's own failure reports: the call it names and its errno, if any.
func numaErr() error {
	where := C.cnuma_err_call()
	if where == nil {
		return nil
	}
	return os.NewSyscallError(C.GoString(where), syscall.Errno(C.cnuma_err_code()))
}

func available() error {
	r, err := C.numa_available()
	if r < 0 {
		return fmt.Errorf("%w: numa_available() = %d (%v)", ErrNoNUMA, int(r), err)
	}
	return nil
}

func maxNode() (int, error) {
	if err := available(); err != nil {
		return 0, err
	}
	return int(C.numa_max_node()), nil
}

func nodeExists(node int) error {
	if err := available(); err != nil {
		return err
	}
	if C.cnuma_node_exists(C.int(node)) == 0 {
		return fmt.Errorf("%w: %d (not in numa_nodes_ptr)", ErrNoNode, node)
	}
	return nil
}

func nodeCPUs(node int) ([]int, error) {
	if err := nodeExists(node); err != nil {
		return nil, err
	}
	buf := make([]C.int, MaxCPU)
	n, err := C.cnuma_node_cpus(C.int(node), &buf[0], C.int(len(buf)))
	if n < 0 {
		return nil, fmt.Errorf("cnuma: numa_node_to_cpus(%d): %w", node, err)
	}
	cpus := make([]int, n)
	for i := range cpus {
		cpus[i] = int(buf[i])
	}
	return cpus, nil
}

func nodeMemory(node int) (Memory, error) {
	if err := nodeExists(node); err != nil {
		return Memory{}, err
	}
	var free C.longlong
	total, err := C.numa_node_size64(C.int(node), &free)
	if total < 0 {
		return Memory{}, fmt.Errorf("cnuma: numa_node_size64(%d): %w", node, err)
	}
	return Memory{Total: uint64(total), Free: uint64(free), HasTotal: true}, nil
}

func distance(from, to int) (int, error) {
	if err := nodeExists(from); err != nil {
		return 0, err
	}
	if err := nodeExists(to); err != nil {
		return 0, err
	}
	d := C.numa_distance(C.int(from), C.int(to))
	if d == 0 {
		// libnuma returns 0 when it could not read the distance table.
		return 0, fmt.Errorf("cnuma: numa_distance(%d, %d): no distance table", from, to)
	}
	return int(d), nil
}

func allocOnNode(size, node int) (*Mem, error) {
	if err := nodeExists(node); err != nil {
		return nil, err
	}
	C.cnuma_err_clear()
	p, err := C.numa_alloc_onnode(C.size_t(size), C.int(node))
	if p == nil {
		return nil, fmt.Errorf("cnuma: numa_alloc_onnode(%d, %d): %w", size, node, err)
	}
	m := &Mem{b: unsafe.Slice((*byte)(p), size), node: node}
	// numa_alloc_onnode hands back unbound memory when mbind fails (NUMA-NOTES):
	// ask the kernel instead of trusting it.
	m.bound, m.reason = checkBound(m.b, node)
	if e := numaErr(); e != nil && !m.bound {
		m.reason = e.Error() + "; " + m.reason
	}
	return m, nil
}

func (m *Mem) release() error {
	if len(m.b) == 0 {
		return nil
	}
	C.numa_free(unsafe.Pointer(&m.b[0]), C.size_t(len(m.b)))
	return nil
}

func runOnNode(node int) error {
	if err := nodeExists(node); err != nil {
		return err
	}
	r, err := C.numa_run_on_node(C.int(node))
	if r < 0 {
		return fmt.Errorf("cnuma: numa_run_on_node(%d): %w", node, err)
	}
	return nil
}

//go:build linux && cgo

package cnuma

/*
#cgo LDFLAGS: -lnuma
#include <errno.h>
#include <stdlib.h>
#include <numa.h>

// libnuma calls numa_error when a system call inside it fails, and its default
// prints to stderr. This definition overrides that weak symbol with one that
// prints nothing: library code never prints, and every call below reports its
// own failure through its result and errno.
void numa_error(char *where) { (void)where; }

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

import "fmt"

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

// nodes reads sysfs, not libnuma: see Nodes.
func nodes() ([]int, error) { return SysFS{}.Nodes() }

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

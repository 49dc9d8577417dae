package hugepage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hioload-ws/hioload-ws/cnuma"
)

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14): fault every page in
// for writing now, and return an error instead of raising SIGBUS when a page
// cannot be had.
const madvPopulateWrite = 23

func mapArena(size, node int, o mapOptions) ([]byte, Arena, error) {
	a := Arena{Node: node, Size: size}
	if !o.noHugetlb {
		mem, err := mapHugetlb(size, node, o.noReserve, &a)
		if err == nil {
			verify(mem, &a)
			return mem, a, nil
		}
		a.Fallbacks = append(a.Fallbacks, "hugetlb: "+err.Error())
	}
	wantTHP := !o.noTHP
	mem, err := mapAnon(size, node, &wantTHP, &a)
	if err != nil {
		return nil, a, err
	}
	verify(mem, &a)
	if wantTHP && a.Kind == PageNormal {
		a.Fallbacks = append(a.Fallbacks, "thp: the kernel backed none of it with huge pages ("+thpSettings()+")")
	}
	return mem, a, nil
}

func unmapArena(mem []byte, _ *Arena) error {
	return os.NewSyscallError("munmap", unix.MunmapPtr(unsafe.Pointer(&mem[0]), uintptr(len(mem))))
}

// mapHugetlb maps size bytes from the hugetlb reservation, binds them and
// faults them in with MADV_POPULATE_WRITE. mmap checks the reservation
// machine-wide, not per node: with huge pages reserved only on another node it
// succeeds, and the first touch of memory bound here finds no huge page on
// this node and raises SIGBUS, which kills the process. Populating turns that
// into an error, and we fall back.
func mapHugetlb(size, node int, noReserve bool, a *Arena) ([]byte, error) {
	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_HUGETLB
	if noReserve {
		flags |= unix.MAP_NORESERVE
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		return nil, hugetlbShort(err, size/hugeSize)
	}
	mem := unsafe.Slice((*byte)(p), size)
	bind(mem, node, a)
	if err := unix.Madvise(mem, madvPopulateWrite); err != nil {
		_ = unix.MunmapPtr(p, uintptr(size))
		if errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("madvise MADV_POPULATE_WRITE: %w (kernel older than 5.14?); not touching hugetlb memory that may raise SIGBUS", err)
		}
		return nil, fmt.Errorf("madvise MADV_POPULATE_WRITE: %w (no free huge pages where the memory is bound; a touch would have raised SIGBUS)", err)
	}
	return mem, nil
}

// hugetlbShort explains a refused MAP_HUGETLB mmap of need pages. ENOMEM
// there is the normal state of a machine without a reservation, not a
// failure: it says so in those words, and keeps the errno for anything else.
func hugetlbShort(err error, need int) error {
	total, free := meminfo("HugePages_Total"), meminfo("HugePages_Free")
	switch {
	case !errors.Is(err, unix.ENOMEM):
		return fmt.Errorf("mmap MAP_HUGETLB: %w (HugePages_Free %s, need %d)", err, free, need)
	case total == "0":
		return fmt.Errorf("none reserved (vm.nr_hugepages is 0; %d pages of 2 MiB would back this pool)", need)
	}
	return fmt.Errorf("%d pages of 2 MiB needed, %s of %s reserved are free", need, free, total)
}

// mapAnon maps size bytes of anonymous memory aligned to hugeSize, asks for
// transparent huge pages when *thp, binds and faults it in. It clears *thp
// when the madvise is refused (and says why in a.Fallbacks).
func mapAnon(size, node int, thp *bool, a *Arena) ([]byte, error) {
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size+hugeSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("hugepage: mmap %d bytes: %w", size, err)
	}
	// Trim the over-allocation so the arena starts on a huge page boundary:
	// THP only backs aligned 2 MiB extents.
	head := int(-uintptr(p) & (hugeSize - 1))
	if head > 0 {
		_ = unix.MunmapPtr(p, uintptr(head))
	}
	if tail := hugeSize - head; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(p, head+size), uintptr(tail))
	}
	mem := unsafe.Slice((*byte)(unsafe.Add(p, head)), size)
	if *thp {
		if err := unix.Madvise(mem, unix.MADV_HUGEPAGE); err != nil {
			*thp = false
			a.Fallbacks = append(a.Fallbacks, "thp: madvise MADV_HUGEPAGE: "+err.Error()+" ("+thpSettings()+")")
		}
	}
	bind(mem, node, a)
	if err := unix.Madvise(mem, madvPopulateWrite); err != nil {
		if !errors.Is(err, unix.EINVAL) {
			_ = unix.MunmapPtr(unsafe.Pointer(&mem[0]), uintptr(size))
			return nil, fmt.Errorf("hugepage: node %d: madvise MADV_POPULATE_WRITE %d bytes: %w", node, size, err)
		}
		// Kernel without MADV_POPULATE_WRITE: anonymous memory cannot raise
		// SIGBUS, so touching each base page is a safe way to fault it in.
		for off := 0; off < size; off += os.Getpagesize() {
			mem[off] = 0
		}
	}
	return mem, nil
}

// bind applies MPOL_BIND to node (node -1: no binding) and records whether it
// took. A refused mbind (EPERM under seccomp) leaves the memory usable but
// unbound; that is reported, not hidden. Callers bind before faulting any page
// in, so cnuma.Bind's MPOL_MF_MOVE has nothing to move.
func bind(mem []byte, node int, a *Arena) {
	a.Bound, a.BindErr = false, ""
	if node < 0 {
		return
	}
	if err := cnuma.Bind(mem, node); err != nil {
		a.BindErr = err.Error()
		return
	}
	p, err := cnuma.MemPolicy(mem)
	switch {
	case err != nil:
		a.Bound = true // mbind said yes; the read-back is what was refused
	case p.Mode != unix.MPOL_BIND || !slices.Contains(p.Nodes, node):
		a.BindErr = fmt.Sprintf("mbind succeeded but the policy reads back as mode %d", p.Mode)
	default:
		a.Bound = true
	}
}

// verify fills a.Kind, a.PageSize, a.HugeBytes and a.Placement from what the
// kernel reports for mem.
func verify(mem []byte, a *Arena) {
	a.Kind, a.PageSize, a.HugeBytes = PageUnknown, 0, 0
	f, err := smapsOf(uintptr(unsafe.Pointer(&mem[0])))
	if err == nil {
		a.PageSize = f["KernelPageSize"]
		switch anon := f["AnonHugePages"]; {
		case a.PageSize >= hugeSize:
			a.Kind, a.HugeBytes = PageHugetlb, len(mem)
		case anon > 0:
			a.Kind, a.HugeBytes = PageTHP, min(anon, len(mem))
		default:
			a.Kind = PageNormal
		}
	} else {
		a.Fallbacks = append(a.Fallbacks, "page kind not verified: "+err.Error())
	}
	a.Placement = placement(mem, a.PageSize)
}

// placement asks the kernel which node holds each of up to 64 pages spread
// over mem: move_pages with no target nodes moves nothing and reports each
// page's node; where it is refused, get_mempolicy asks page by page.
func placement(mem []byte, pageSize int) Placement {
	if pageSize <= 0 {
		pageSize = os.Getpagesize()
	}
	step := roundUp(max(len(mem)/64, pageSize), pageSize)
	var pages [64]unsafe.Pointer
	n := 0
	for off := 0; off < len(mem) && n < len(pages); off += step {
		pages[n] = unsafe.Pointer(&mem[off])
		n++
	}
	p := Placement{Method: "move_pages", Sampled: n, Nodes: make(map[int]int)}
	nodes, err := cnuma.PageNodes(pages[:n])
	if err == nil {
		for _, node := range nodes {
			p.Nodes[node]++ // a negative node is -errno, e.g. -14 (EFAULT) or -2 (ENOENT: not present)
		}
		return p
	}
	p.Method = "get_mempolicy"
	for i := range n {
		node, err2 := cnuma.PageNode(mem[i*step:])
		if err2 != nil {
			return Placement{Err: err.Error() + "; " + err2.Error()}
		}
		p.Nodes[node]++
	}
	return p
}

// smapsOf returns the size fields (in bytes) of the mapping holding addr in
// /proc/self/smaps.
func smapsOf(addr uintptr) (map[string]int, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var fields map[string]int
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := vmaRange(line); ok {
			if fields != nil {
				return fields, nil // the next mapping starts
			}
			if lo <= addr && addr < hi {
				fields = make(map[string]int)
			}
			continue
		}
		if fields == nil {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		rest = strings.TrimSpace(rest)
		if !ok || !strings.HasSuffix(rest, " kB") {
			continue
		}
		if v, err := strconv.Atoi(strings.TrimSuffix(rest, " kB")); err == nil {
			fields[name] = v << 10
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if fields == nil {
		return nil, fmt.Errorf("no mapping holds %#x in /proc/self/smaps", addr)
	}
	return fields, nil
}

// vmaRange parses the "start-end perms ..." header line of an smaps entry.
func vmaRange(line string) (lo, hi uintptr, ok bool) {
	r, _, found := strings.Cut(line, " ")
	if !found {
		return 0, 0, false
	}
	l, h, found := strings.Cut(r, "-")
	if !found {
		return 0, 0, false
	}
	const bits = int(unsafe.Sizeof(uintptr(0)) * 8)
	a, err1 := strconv.ParseUint(l, 16, bits)
	b, err2 := strconv.ParseUint(h, 16, bits)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uintptr(a), uintptr(b), true
}

// meminfo returns a field of /proc/meminfo as text, or "?".
func meminfo(name string) string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// thpSettings describes the THP sysfs knobs for fallback messages.
func thpSettings() string {
	read := func(f string) string {
		b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/" + f)
		if err != nil {
			return "?"
		}
		return string(bytes.TrimSpace(b))
	}
	return "transparent_hugepage/enabled: " + read("enabled") + ", defrag: " + read("defrag")
}

// Flags of /proc/kpageflags (Documentation/admin-guide/mm/pagemap.rst).
const (
	kpfHuge = 1 << 17 // a hugetlb page
	kpfTHP  = 1 << 22 // part of a transparent huge page
)

// hugeBytes measures huge page backing for part of an arena. hugetlb and
// base-page arenas are uniform (smaps said so for the whole mapping); for THP
// it asks thpBytes.
func hugeBytes(part []byte, a *Arena) int {
	switch {
	case a.Kind == PageHugetlb:
		return len(part)
	case a.Kind == PageNormal || len(part) == 0:
		return 0
	case a.Kind != PageTHP:
		return -1
	}
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return -1
	}
	defer pm.Close()
	kf, err := os.Open("/proc/kpageflags")
	if err != nil {
		return -1
	}
	defer kf.Close()
	return thpBytes(part, pm, kf)
}

// thpBytes looks at one base page per 2 MiB extent of part: pagemap gives
// its frame number (bits 0-54 when bit 63, present, is set) and kpageflags
// that frame's flags. Frame numbers read as 0 without CAP_SYS_ADMIN, and
// kpageflags is root-only: then it returns -1.
func thpBytes(part []byte, pagemap, kpageflags *os.File) int {
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(&part[0]))
	end := start + uintptr(len(part))
	huge := 0
	for ext := start &^ (hugeSize - 1); ext < end; ext += hugeSize {
		lo, hi := max(ext, start), min(ext+hugeSize, end)
		ent, ok := readWord(pagemap, lo/page*8)
		switch pfn := ent & (1<<55 - 1); {
		case !ok:
			return -1
		case ent&(1<<63) == 0:
			continue // not present: not huge
		case pfn == 0:
			return -1 // frame numbers hidden: not CAP_SYS_ADMIN
		default:
			flags, ok := readWord(kpageflags, uintptr(pfn)*8)
			if !ok {
				return -1
			}
			if flags&(kpfTHP|kpfHuge) != 0 {
				huge += int(hi - lo)
			}
		}
	}
	return huge
}

// readWord reads the little-endian 64-bit word at off.
func readWord(f *os.File, off uintptr) (uint64, bool) {
	var w [8]byte
	if _, err := f.ReadAt(w[:], int64(off)); err != nil {
		return 0, false
	}
	return binary.LittleEndian.Uint64(w[:]), true
}

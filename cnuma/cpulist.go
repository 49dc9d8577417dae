package cnuma

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxCPU bounds the CPU numbers ParseCPUList accepts, so that a hostile or broken
// file ("0-2147483647") cannot make it allocate without limit.
const MaxCPU = 1 << 16

// ParseCPUList parses a Linux cpulist such as "0-3,8-11,16" (sysfs cpulist files,
// taskset -c, Cpus_allowed_list; ranges may carry a stride, "0-7:2"). It returns
// the CPUs ascending without duplicates. An empty or all-blank list is an empty,
// non-nil result: a node without CPUs is legal.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	cpus := []int{}
	if s == "" {
		return cpus, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, stride, err := parseRange(part)
		if err != nil {
			return nil, fmt.Errorf("cnuma: cpulist %q: %w", s, err)
		}
		for c := lo; c <= hi; c += stride {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

func parseRange(part string) (lo, hi, stride int, err error) {
	part = strings.TrimSpace(part)
	stride = 1
	if r, st, ok := strings.Cut(part, ":"); ok {
		part = r
		if stride, err = parseCPU(st); err != nil {
			return 0, 0, 0, err
		}
		if stride == 0 {
			return 0, 0, 0, fmt.Errorf("zero stride in %q", part)
		}
	}
	a, b, isRange := strings.Cut(part, "-")
	if lo, err = parseCPU(a); err != nil {
		return 0, 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parseCPU(b); err != nil {
			return 0, 0, 0, err
		}
	}
	if hi < lo {
		return 0, 0, 0, fmt.Errorf("range %q runs backwards", part)
	}
	return lo, hi, stride, nil
}

func parseCPU(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s == "" || s[0] == '+' {
		return 0, fmt.Errorf("bad cpu number %q", s)
	}
	if n > MaxCPU {
		return 0, fmt.Errorf("cpu %d above limit %d", n, MaxCPU)
	}
	return n, nil
}

// FormatCPUList writes cpus as a cpulist ("0-3,8"); it sorts a copy and drops
// duplicates, so any slice is fine. An empty slice gives "".
func FormatCPUList(cpus []int) string {
	c := slices.Clone(cpus)
	slices.Sort(c)
	c = slices.Compact(c)
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(c[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(c[j]))
		}
		i = j + 1
	}
	return b.String()
}

package hugepage

import (
	"strconv"
	"testing"
)

// FuzzVMARange feeds smaps header-like lines to the parser: it must never
// panic, and a range it accepts must format back to the same numbers.
func FuzzVMARange(f *testing.F) {
	for _, s := range []string{
		"7f000000-7f400000 rw-p 00000000 00:00 0 ",
		"00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/x",
		"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]",
		"AnonHugePages:      4096 kB",
		"-",
		"- ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		lo, hi, ok := vmaRange(line)
		if !ok {
			return
		}
		again := strconv.FormatUint(uint64(lo), 16) + "-" + strconv.FormatUint(uint64(hi), 16) + " x"
		lo2, hi2, ok2 := vmaRange(again)
		if !ok2 || lo2 != lo || hi2 != hi {
			t.Fatalf("%q -> %#x-%#x, reformatted %q -> %#x-%#x %v", line, lo, hi, again, lo2, hi2, ok2)
		}
	})
}

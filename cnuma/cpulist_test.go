package cnuma

import (
	"slices"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []int
		bad  bool
	}{
		{name: "empty", in: "", want: []int{}},
		{name: "blank line", in: " \n", want: []int{}},
		{name: "single", in: "0", want: []int{0}},
		{name: "range", in: "0-3", want: []int{0, 1, 2, 3}},
		{name: "ranges and singles", in: "0-1,4,6-7\n", want: []int{0, 1, 4, 6, 7}},
		{name: "unsorted with overlap", in: "6-7,0-2,1", want: []int{0, 1, 2, 6, 7}},
		{name: "stride", in: "0-7:2", want: []int{0, 2, 4, 6}},
		{name: "backwards", in: "3-1", bad: true},
		{name: "negative", in: "-1", bad: true},
		{name: "plus sign", in: "+1", bad: true},
		{name: "letters", in: "a-b", bad: true},
		{name: "empty element", in: "1,,2", bad: true},
		{name: "zero stride", in: "0-3:0", bad: true},
		{name: "above limit", in: "0-2147483647", bad: true},
		{name: "hex mask is not a list", in: "ff", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCPUList(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseCPUList(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ParseCPUList(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestFormatCPUList(t *testing.T) {
	tests := []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{0, 1, 2, 3}, "0-3"},
		{[]int{7, 0, 1, 4, 6, 1}, "0-1,4,6-7"},
	}
	for _, tc := range tests {
		if got := FormatCPUList(tc.in); got != tc.want {
			t.Errorf("FormatCPUList(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseCPUList checks that any accepted list is sorted, unique, in range,
// and survives a FormatCPUList round trip.
func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0", "0-3", "0-1,4,6-7", "0-7:2", "", "3-1", "1,,2", "0-65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := ParseCPUList(s)
		if err != nil {
			return
		}
		for i, c := range cpus {
			if c < 0 || c > MaxCPU || (i > 0 && cpus[i-1] >= c) {
				t.Fatalf("ParseCPUList(%q) = %v: not sorted, unique and in range", s, cpus)
			}
		}
		again, err := ParseCPUList(FormatCPUList(cpus))
		if err != nil || !slices.Equal(again, cpus) {
			t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, cpus, FormatCPUList(cpus), again, err)
		}
	})
}

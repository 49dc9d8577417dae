package topology

import (
	"errors"
	"testing"
)

func TestParseNUMA(t *testing.T) {
	tests := []struct {
		in   string
		want Selector
		bad  bool
	}{
		{in: "auto", want: Auto},
		{in: "AUTO", want: Auto},
		{in: "-1", want: Auto},
		{in: " 1 ", want: Selector{Node: 1}},
		{in: "0", want: Selector{Node: 0}},
		{in: "7", want: Selector{Node: 7}},
		{in: "1023", want: Selector{Node: 1023}},
		{in: "1024", bad: true},
		{in: "", bad: true},
		{in: "-2", bad: true},
		{in: "+1", bad: true},
		{in: "1.0", bad: true},
		{in: "0x1", bad: true},
		{in: "node1", bad: true},
		{in: "99999999999999999999", bad: true},
	}
	for _, tc := range tests {
		got, err := ParseNUMA(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrBadNUMA) {
				t.Errorf("ParseNUMA(%q) = %v, %v; want ErrBadNUMA", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseNUMA(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseNUMA checks that every accepted value names auto or a node in range
// and that String gives back a value that parses to the same selector.
func FuzzParseNUMA(f *testing.F) {
	for _, s := range []string{"auto", "-1", "0", "1", "1023", "1024", "", "+1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseNUMA(s)
		if err != nil {
			if !errors.Is(err, ErrBadNUMA) {
				t.Fatalf("ParseNUMA(%q): error %v does not wrap ErrBadNUMA", s, err)
			}
			return
		}
		if !sel.Auto && (sel.Node < 0 || sel.Node > maxNodeID) {
			t.Fatalf("ParseNUMA(%q) = %+v", s, sel)
		}
		again, err := ParseNUMA(sel.String())
		if err != nil || again != sel {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, sel.String(), again, err)
		}
	})
}

package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// maxNodeID is the highest node id a -numa value may name (Linux MAX_NUMNODES
// is at most 1024).
const maxNodeID = 1023

// Selector is a parsed -numa value: Auto, or one node.
type Selector struct {
	Auto bool
	Node int // meaningful when !Auto
}

// Auto is the selector for "-numa auto".
var Auto = Selector{Auto: true}

// ParseNUMA parses a -numa value: "auto" (any case) and "-1" select nodes
// automatically; a decimal node number 0..1023 selects that node. Surrounding
// blanks are ignored; signs, other negative numbers and anything else are
// errors wrapping ErrBadNUMA.
func ParseNUMA(s string) (Selector, error) {
	v := strings.TrimSpace(s)
	if strings.EqualFold(v, "auto") || v == "-1" {
		return Auto, nil
	}
	if v == "" || strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return Selector{}, fmt.Errorf("%w %q: want auto, -1 or a node number", ErrBadNUMA, s)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n > maxNodeID {
		return Selector{}, fmt.Errorf("%w %q: node number above %d", ErrBadNUMA, s, maxNodeID)
	}
	return Selector{Node: n}, nil
}

// String returns the selector as ParseNUMA accepts it: "auto" or the node.
func (s Selector) String() string {
	if s.Auto {
		return "auto"
	}
	return strconv.Itoa(s.Node)
}

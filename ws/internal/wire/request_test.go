package wire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHeadScannerReads: a head cut into reads of any size scans to the
// same result as the whole of it at once, also past the 64 KiB the
// scanner remembers (where it resumes earlier and checks again).
func TestHeadScannerReads(t *testing.T) {
	good := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
	big := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 100<<10) + "\r\nX-Next: 1\r\n\r\n"
	for _, tc := range []struct {
		name string
		head string
		end  int
		err  error
	}{
		{"good", good + "frames", len(good), nil},
		{"big", big, len(big), nil},
		{"big, a bare LF after 100 KiB", strings.Replace(big, "\r\nX-Next", "\nX-Next", 1), 0, ErrBareLF},
		{"big, NUL after 100 KiB", strings.Replace(big, "X-Next: 1", "X-Next: \x00", 1), 0, ErrFieldValue},
		{"bare CR at the end of a read", "GET / HTTP/1.1\r\nHost: x\rY", 0, ErrBareCR},
		{"bad request line", "GET / HTTP/1.1 \r\n", 0, ErrVersionSyntax},
		{"unfinished", "GET / HTTP/1.1\r\nHost: x\r\n", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := []byte(tc.head)
			var whole HeadScanner
			end, err := whole.Scan(head)
			require.Equal(t, tc.err, err)
			require.Equal(t, tc.end, end)
			for _, chunk := range []int{1, 3, 1000, 4096, 70000} {
				if chunk < 1000 && len(head) > 10000 {
					continue // quadratic in a 100 KiB line: as slow as it is pointless
				}
				var s HeadScanner
				var got int
				var gotErr error
				for i := min(chunk, len(head)); ; i = min(i+chunk, len(head)) {
					got, gotErr = s.Scan(head[:i])
					if got > 0 || gotErr != nil || i == len(head) {
						break
					}
				}
				require.Equal(t, tc.err, gotErr, "reads of %d", chunk)
				require.Equal(t, tc.end, got, "reads of %d", chunk)
			}
		})
	}
}

// TestParseRequestBig: a request past 64 KiB parses.
func TestParseRequestBig(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 100<<10) + "\r\nOrigin: http://o\r\n\r\n"
	var r Request
	require.NoError(t, ParseRequest([]byte(head), &r))
	require.Equal(t, "http://o", string(r.Origin))
	require.Len(t, r.Fields(), 3)
}

package wstest

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestPayload(t *testing.T) {
	p := Payload(4096, 7)
	require.Len(t, p, 4096)
	require.Equal(t, p, Payload(4096, 7), "the same seed gives the same bytes")
	require.NotEqual(t, p, Payload(4096, 8))
	var seen [256]bool
	for _, b := range p {
		seen[b] = true
	}
	for v, ok := range seen {
		require.True(t, ok, "byte %#x never occurs", v)
	}
	require.Len(t, Payload(13, 1), 13)
}

func TestTextPayload(t *testing.T) {
	multi := 0
	for n := range 300 {
		p := TextPayload(n)
		require.Len(t, p, n)
		require.True(t, utf8.Valid(p), "n=%d", n)
		if utf8.RuneCount(p) < n {
			multi++
		}
	}
	require.Greater(t, multi, 250, "most payloads hold multi-byte code points")
}

func TestCut(t *testing.T) {
	b := []byte("0123456789")
	parts := Cut(b, 2, 2, 7)
	require.Equal(t, []string{"01", "", "23456", "789"}, []string{string(parts[0]), string(parts[1]), string(parts[2]), string(parts[3])})
	require.Equal(t, b, bytes.Join(parts, nil))
	require.Equal(t, [][]byte{b}, Cut(b))
}

func TestFirstDiff(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "abc", 3}, {"abc", "abd", 2}, {"ab", "abc", 2}, {"xbc", "abc", 0}} {
		require.Equal(t, tc.want, FirstDiff([]byte(tc.a), []byte(tc.b)), "%q %q", tc.a, tc.b)
	}
}

func TestSizeName(t *testing.T) {
	for n, want := range map[int]string{0: "0B", 100: "100B", 1024: "1KiB", 1500: "1500B", 64 << 10: "64KiB", 1 << 20: "1MiB", 16 << 20: "16MiB", 1<<20 + 1024: "1025KiB"} {
		require.Equal(t, want, SizeName(n), "%d", n)
	}
}

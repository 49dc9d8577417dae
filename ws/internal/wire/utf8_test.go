package wire

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestValidateUTF8Table(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		valid bool
	}{
		{"empty", "", true},
		{"ascii", "Hello-µ@ßöäüàá-UTF-8!!", true},
		{"kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true},
		{"U+0000", "\x00", true},
		{"U+0080", "\xc2\x80", true},
		{"U+07FF", "\xdf\xbf", true},
		{"U+0800", "\xe0\xa0\x80", true},
		{"U+FFFF", "\xef\xbf\xbf", true},
		{"U+10000", "\xf0\x90\x80\x80", true},
		{"U+10FFFF", "\xf4\x8f\xbf\xbf", true},
		{"U+D7FF", "\xed\x9f\xbf", true},
		{"U+E000", "\xee\x80\x80", true},
		{"U+FFFE noncharacter", "\xef\xbf\xbe", true},
		{"U+110000", "\xf4\x90\x80\x80", false},
		{"5-byte form", "\xf8\x88\x80\x80\x80", false},
		{"6-byte form", "\xfc\x84\x80\x80\x80\x80", false},
		{"FE", "\xfe", false},
		{"FF", "\xff", false},
		{"lone continuation", "\x80", false},
		{"continuation run", "\x80\xbf\x80", false},
		{"overlong slash 2", "\xc0\xaf", false},
		{"overlong slash 3", "\xe0\x80\xaf", false},
		{"overlong slash 4", "\xf0\x80\x80\xaf", false},
		{"overlong max 2", "\xc1\xbf", false},
		{"overlong max 3", "\xe0\x9f\xbf", false},
		{"overlong max 4", "\xf0\x8f\xbf\xbf", false},
		{"surrogate D800", "\xed\xa0\x80", false},
		{"surrogate DFFF", "\xed\xbf\xbf", false},
		{"surrogate pair", "\xed\xa0\x80\xed\xb0\x80", false},
		{"truncated 2", "\xc2", false},
		{"truncated 3", "\xe1\x80", false},
		{"truncated 4", "\xf1\x80\x80", false},
		{"kosme then bad", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", false},
		{"ascii then lone C0", "aaaaaaaaaaaaaaaa\xc0", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.valid, ValidUTF8([]byte(tc.in)))
			require.Equal(t, utf8.ValidString(tc.in), tc.valid, "the table itself agrees with unicode/utf8")
			// Fed one byte at a time the verdict is the same, and an invalid
			// input is rejected at the first byte that cannot be valid.
			s, ok := UTF8State(0), true
			for i := 0; i < len(tc.in) && ok; i++ {
				s, ok = ValidateUTF8(s, []byte{tc.in[i]})
				if !ok {
					require.False(t, utf8.ValidString(tc.in[:i+1]) || prefixOfValid(tc.in[:i+1]), "rejected a prefix of valid text at byte %d", i)
				}
			}
			require.Equal(t, tc.valid, ok && s.Complete())
		})
	}
}

// prefixOfValid reports whether p could still become valid UTF-8.
func prefixOfValid(p string) bool {
	for _, tail := range []string{"", "\x80", "\x80\x80", "\x80\x80\x80", "\xbf", "\xbf\xbf", "\xbf\xbf\xbf", "\x90\x80\x80", "\xa0\x80"} {
		if utf8.ValidString(p + tail) {
			return true
		}
	}
	return false
}

// FuzzValidateUTF8 checks the validator against unicode/utf8, whole and
// split at every point (the state must carry across the split).
func FuzzValidateUTF8(f *testing.F) {
	for _, s := range []string{"", "hello", "\xce\xba\xe1\xbd\xb9", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf0\x9f\x98\x80x", "\xe0\x80\xaf"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		want := utf8.Valid(p)
		if got := ValidUTF8(p); got != want {
			t.Fatalf("ValidUTF8(%q) = %v, unicode/utf8 says %v", p, got, want)
		}
		for i := 0; i <= len(p); i++ {
			s, ok := ValidateUTF8(0, p[:i])
			if ok {
				s, ok = ValidateUTF8(s, p[i:])
			}
			if got := ok && s.Complete(); got != want {
				t.Fatalf("split at %d of %q: %v, want %v", i, p, got, want)
			}
		}
	})
}

func BenchmarkValidateUTF8(b *testing.B) {
	ascii := make([]byte, 16<<10)
	for i := range ascii {
		ascii[i] = 'a' + byte(i%26)
	}
	mixed := []byte{}
	for len(mixed) < 16<<10 {
		mixed = append(mixed, "héllo wörld — ☃ 𝄞 "...)
	}
	for _, tc := range []struct {
		name string
		p    []byte
	}{{"ascii-64B", ascii[:64]}, {"ascii-16KiB", ascii}, {"mixed-64B", mixed[:64]}, {"mixed-16KiB", mixed}} {
		b.Run(tc.name+"/ours", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.p)))
			for b.Loop() {
				ValidateUTF8(0, tc.p)
			}
		})
		b.Run(tc.name+"/unicode-utf8", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.p)))
			for b.Loop() {
				utf8.Valid(tc.p)
			}
		})
	}
}

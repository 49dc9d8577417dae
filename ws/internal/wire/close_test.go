package wire

import (
	"encoding/binary"
	"testing"

	gws "github.com/gobwas/ws"
	"github.com/stretchr/testify/require"
)

func closePayload(code uint16, reason string) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	return append(b, reason...)
}

func TestParseClose(t *testing.T) {
	valid := []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	invalid := []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}
	for _, c := range valid {
		code, reason, err := ParseClose(closePayload(c, "bye"))
		require.NoError(t, err, "code %d", c)
		require.Equal(t, StatusCode(c), code)
		require.Equal(t, "bye", string(reason))
	}
	for _, c := range invalid {
		_, _, err := ParseClose(closePayload(c, ""))
		require.Equal(t, ErrCloseCode, err, "code %d", c)
	}
	code, _, err := ParseClose(nil)
	require.NoError(t, err)
	require.Equal(t, gws.StatusNoStatusRcvd, code)
	_, _, err = ParseClose([]byte{0x03})
	require.Equal(t, ErrCloseLength, err)
	_, _, err = ParseClose(closePayload(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"))
	require.Equal(t, ErrCloseReason, err)
	require.Equal(t, gws.StatusInvalidFramePayloadData, ErrCloseReason.Code)
}

func TestPutClose(t *testing.T) {
	b := make([]byte, 125)
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'r'
	}
	n := PutClose(b, gws.StatusGoingAway, string(long))
	require.Equal(t, 125, n, "reason cut to fit a control frame")
	code, reason, err := ParseClose(b[:n])
	require.NoError(t, err)
	require.Equal(t, gws.StatusGoingAway, code)
	require.Len(t, reason, 123)
	// A cut never splits a UTF-8 sequence.
	n = PutClose(b, gws.StatusNormalClosure, string(long[:122])+"é")
	_, _, err = ParseClose(b[:n])
	require.NoError(t, err)
	require.Equal(t, 124, n)
}

func FuzzParseClose(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03})
	f.Add(closePayload(1000, "ok"))
	f.Add(closePayload(1005, ""))
	f.Add(closePayload(4999, "\xed\xa0\x80"))
	f.Fuzz(func(t *testing.T, p []byte) {
		code, reason, err := ParseClose(p)
		if err != nil {
			ce, ok := err.(*CloseError)
			if !ok || (ce.Code != gws.StatusProtocolError && ce.Code != gws.StatusInvalidFramePayloadData) {
				t.Fatalf("ParseClose(%x): error %v is not a 1002/1007 CloseError", p, err)
			}
			return
		}
		if len(p) == 0 {
			require.Equal(t, gws.StatusNoStatusRcvd, code)
			return
		}
		require.True(t, ValidCloseCode(code))
		require.True(t, ValidUTF8(reason))
		// What we accept we can write back unchanged.
		b := make([]byte, 125)
		if len(p) <= 125 {
			n := PutClose(b, code, string(reason))
			require.Equal(t, p, b[:n])
		}
	})
}

package wstest

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
)

// Request is a valid opening handshake (RFC 6455 §4.1) for host with key,
// as one string: tests edit it to make it invalid.
func Request(host, key string) string {
	return "GET /chat HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// NewKey returns a random Sec-WebSocket-Key: base64 of 16 bytes.
func NewKey() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return base64.StdEncoding.EncodeToString(b[:])
}

// AcceptKey is the Sec-WebSocket-Accept a server must answer key with
// (RFC 6455 §4.2.2): base64 of the SHA-1 of key and the protocol's GUID.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

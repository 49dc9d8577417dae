package wstest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Client is a raw WebSocket client: it writes whatever bytes it is given and
// reads the server's frames strictly (ReadFrame). Its methods without a
// testing.TB (Handshake, ReadFrame, ReadResponse) return errors and set no
// deadlines, so that programs can use them; those that take a testing.TB
// (Write, Next, the Expect methods) fail the test instead, and bound each
// read and write by Timeout.
//
// A Client is not safe for concurrent use, except that one goroutine may
// read while another writes.
type Client struct {
	nc net.Conn
	br *bufio.Reader
	// Deflate is the permessage-deflate the server agreed to
	// (HandshakeOffer), nil without: Next then accepts RSV1 on a
	// message's frame, and ExpectMessage inflates it.
	Deflate *Deflate
}

// NewClient wraps a connection; it reads through a 64 KiB buffer.
func NewClient(nc net.Conn) *Client {
	return &Client{nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
}

// DialTimeout opens a TCP connection to addr and runs Handshake on it
// (extra goes out with the request), all within timeout. It leaves no
// deadline set; on an error the connection is closed.
func DialTimeout(addr string, timeout time.Duration, extra ...byte) (*Client, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := NewClient(nc)
	err = nc.SetDeadline(time.Now().Add(timeout))
	if err == nil {
		err = c.Handshake(addr, extra...)
	}
	if err == nil {
		err = nc.SetDeadline(time.Time{})
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// Conn is the connection, for what the Client does not do: deadlines,
// half-closes, socket options. Read through Reader, not Conn, once anything
// has been read: the Client's buffer may hold bytes already.
func (c *Client) Conn() net.Conn { return c.nc }

// Reader is the Client's buffered reader of the connection.
func (c *Client) Reader() *bufio.Reader { return c.br }

// Close closes the connection.
func (c *Client) Close() error { return c.nc.Close() }

// Handshake runs the opening handshake for host with a new key: it writes
// Request (then extra, in the same write: frames pipelined behind the
// request) and checks the server's answer as RFC 6455 §4.1 tells a client
// to: status 101, Upgrade: websocket, Connection: Upgrade, and the
// Sec-WebSocket-Accept for the key.
func (c *Client) Handshake(host string, extra ...byte) error {
	_, err := c.handshake(Request(host, NewKey()), extra)
	return err
}

// HandshakeOffer is Handshake with a Sec-WebSocket-Extensions header
// carrying offer (RFC 7692 §5: one or more permessage-deflate offers).
// A response that accepts one sets c.Deflate; a response the offer does not
// allow (ParseDeflateResponse) is an error.
func (c *Client) HandshakeOffer(host, offer string) error {
	req := Request(host, NewKey())
	req = req[:len(req)-2] + "Sec-WebSocket-Extensions: " + offer + "\r\n\r\n"
	resp, err := c.handshake(req, nil)
	if err != nil {
		return err
	}
	c.Deflate = nil
	switch v := resp.Header.Values("Sec-WebSocket-Extensions"); len(v) {
	case 0:
		return nil
	case 1:
		c.Deflate, err = ParseDeflateResponse(v[0], strings.Contains(offer, "client_max_window_bits"))
		return err
	default:
		return fmt.Errorf("%w: %d Sec-WebSocket-Extensions headers", ErrDeflateResponse, len(v))
	}
}

// handshake writes req (then extra) and checks the response to it.
func (c *Client) handshake(req string, extra []byte) (*http.Response, error) {
	key := req[strings.Index(req, "Sec-WebSocket-Key: ")+len("Sec-WebSocket-Key: "):]
	key = key[:strings.IndexByte(key, '\r')]
	if _, err := c.nc.Write(append([]byte(req), extra...)); err != nil {
		return nil, fmt.Errorf("wstest: writing the handshake: %w", err)
	}
	resp, err := c.ReadResponse(nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("wstest: handshake: status %q, want 101", resp.Status)
	}
	for _, h := range [...][2]string{{"Upgrade", "websocket"}, {"Connection", "upgrade"}} {
		if v := resp.Header.Get(h[0]); !strings.EqualFold(v, h[1]) {
			return nil, fmt.Errorf("wstest: handshake: %s header %q, want %q", h[0], v, h[1])
		}
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), AcceptKey(key); got != want {
		return nil, fmt.Errorf("wstest: handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	return resp, nil
}

// ReadResponse reads an HTTP response head, and its body unless it is a
// 101, whose connection goes on as WebSocket.
func (c *Client) ReadResponse(req *http.Request) (*http.Response, error) {
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return nil, fmt.Errorf("wstest: reading the HTTP response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		if _, err := io.ReadAll(resp.Body); err != nil {
			return nil, fmt.Errorf("wstest: reading the response body: %w", err)
		}
	}
	return resp, nil
}

// ReadFrame reads the server's next frame (see the function ReadFrame).
func (c *Client) ReadFrame() (Frame, error) { return ReadFrame(c.br) }

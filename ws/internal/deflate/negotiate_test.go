package deflate

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/internal/wstest"
)

// defaultPolicy is ws.DefaultConfig's.
var defaultPolicy = Policy{ServerContextTakeover: true, ServerWindowBits: 15, ClientWindowBits: 15}

const pmd = "permessage-deflate"

// TestNegotiate checks the response byte for byte, and the parameters,
// for valid, invalid, duplicated and multiple offers (RFC 7692 §7).
func TestNegotiate(t *testing.T) {
	pol := defaultPolicy
	noServerCtx := pol
	noServerCtx.ServerContextTakeover = false
	clientCtx := pol
	clientCtx.ClientContextTakeover = true
	clientCtx10 := clientCtx
	clientCtx10.ClientWindowBits = 10
	server10 := pol
	server10.ServerWindowBits = 10
	server8 := pol
	server8.ServerWindowBits = 8

	// The default answer, and its parameters.
	const def = pmd + "; client_no_context_takeover"
	defP := Params{ClientNoContextTakeover: true, ServerWindowBits: 15, ClientWindowBits: 15}
	with := func(f func(*Params)) Params { p := defP; f(&p); return p }

	cases := []struct {
		name   string
		values []string
		pol    Policy
		want   string // "" = declined
		params Params
	}{
		// Valid offers.
		{"plain", []string{pmd}, pol, def, defP},
		{"client_max_window_bits without value", []string{pmd + "; client_max_window_bits"}, pol, def, defP},
		{"client_max_window_bits=9", []string{pmd + "; client_max_window_bits=9"}, pol, def, with(func(p *Params) { p.ClientWindowBits = 9 })},
		{"client_no_context_takeover", []string{pmd + "; client_no_context_takeover"}, pol, def, defP},
		{"server_no_context_takeover", []string{pmd + "; server_no_context_takeover"}, pol,
			pmd + "; server_no_context_takeover; client_no_context_takeover", with(func(p *Params) { p.ServerNoContextTakeover = true })},
		{"server_max_window_bits=10", []string{pmd + "; server_max_window_bits=10"}, pol,
			def + "; server_max_window_bits=10", with(func(p *Params) { p.ServerWindowBits = 10 })},
		{"server_max_window_bits=8", []string{pmd + "; server_max_window_bits=8"}, pol,
			def + "; server_max_window_bits=8", with(func(p *Params) { p.ServerWindowBits = 8 })},
		{"server_max_window_bits=15", []string{pmd + "; server_max_window_bits=15"}, pol,
			def + "; server_max_window_bits=15", defP},
		{"quoted value", []string{pmd + `; server_max_window_bits="10"`}, pol,
			def + "; server_max_window_bits=10", with(func(p *Params) { p.ServerWindowBits = 10 })},
		{"quoted value with an escape", []string{pmd + `; server_max_window_bits="1\2"`}, pol,
			def + "; server_max_window_bits=12", with(func(p *Params) { p.ServerWindowBits = 12 })},
		{"all four (autobahn 13.5)", []string{pmd + "; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8"}, pol,
			pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8",
			with(func(p *Params) { p.ServerNoContextTakeover, p.ServerWindowBits = true, 8 })},
		{"names in any case", []string{"PerMessage-Deflate; Server_No_Context_Takeover"}, pol,
			pmd + "; server_no_context_takeover; client_no_context_takeover", with(func(p *Params) { p.ServerNoContextTakeover = true })},
		{"whitespace around separators", []string{" \t" + pmd + " ;\tserver_max_window_bits = 11 , "}, pol,
			def + "; server_max_window_bits=11", with(func(p *Params) { p.ServerWindowBits = 11 })},
		{"empty list elements", []string{" , ,," + pmd + ",,"}, pol, def, defP},

		// Invalid offers are declined.
		{"server_max_window_bits=7", []string{pmd + "; server_max_window_bits=7"}, pol, "", Params{}},
		{"server_max_window_bits=16", []string{pmd + "; server_max_window_bits=16"}, pol, "", Params{}},
		{"server_max_window_bits=08", []string{pmd + "; server_max_window_bits=08"}, pol, "", Params{}},
		{"server_max_window_bits=+9", []string{pmd + "; server_max_window_bits=+9"}, pol, "", Params{}},
		{"server_max_window_bits without value", []string{pmd + "; server_max_window_bits"}, pol, "", Params{}},
		{"server_max_window_bits= (empty)", []string{pmd + "; server_max_window_bits="}, pol, "", Params{}},
		{"server_max_window_bits empty quotes", []string{pmd + `; server_max_window_bits=""`}, pol, "", Params{}},
		{"client_max_window_bits=16", []string{pmd + "; client_max_window_bits=16"}, pol, "", Params{}},
		{"client_max_window_bits=1 0", []string{pmd + "; client_max_window_bits=1 0"}, pol, "", Params{}},
		{"quoted value not a token", []string{pmd + `; client_max_window_bits=" 10"`}, pol, "", Params{}},
		{"server_no_context_takeover with a value", []string{pmd + "; server_no_context_takeover=1"}, pol, "", Params{}},
		{"client_no_context_takeover with a value", []string{pmd + `; client_no_context_takeover=""`}, pol, "", Params{}},
		{"unknown parameter", []string{pmd + "; foo"}, pol, "", Params{}},
		{"unknown parameter with a value", []string{pmd + "; mem_level=8"}, pol, "", Params{}},
		{"trailing semicolon", []string{pmd + ";"}, pol, "", Params{}},
		{"unterminated quote", []string{pmd + `; server_max_window_bits="10`}, pol, "", Params{}},
		{"junk after the name", []string{pmd + " x"}, pol, "", Params{}},
		{"no offer", []string{""}, pol, "", Params{}},
		{"another extension", []string{"x-webkit-deflate-frame"}, pol, "", Params{}},
		{"a prefix of the name", []string{"permessage-deflat"}, pol, "", Params{}},

		// Duplicated parameters are declined.
		{"server_no_context_takeover twice", []string{pmd + "; server_no_context_takeover; server_no_context_takeover"}, pol, "", Params{}},
		{"client_no_context_takeover twice", []string{pmd + "; client_no_context_takeover; client_no_context_takeover"}, pol, "", Params{}},
		{"server_max_window_bits twice", []string{pmd + "; server_max_window_bits=10; server_max_window_bits=10"}, pol, "", Params{}},
		{"client_max_window_bits twice", []string{pmd + "; client_max_window_bits; client_max_window_bits"}, pol, "", Params{}},
		{"client_max_window_bits with and without value", []string{pmd + "; client_max_window_bits=10; client_max_window_bits"}, pol, "", Params{}},

		// Several offers: the first acceptable one wins.
		{"bad offer, then a good one", []string{pmd + "; server_max_window_bits=7, " + pmd + "; server_max_window_bits=12"}, pol,
			def + "; server_max_window_bits=12", with(func(p *Params) { p.ServerWindowBits = 12 })},
		{"first of two good offers", []string{pmd + "; server_max_window_bits=9, " + pmd}, pol,
			def + "; server_max_window_bits=9", with(func(p *Params) { p.ServerWindowBits = 9 })},
		{"autobahn 13.7", []string{pmd + "; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, " +
			pmd + "; client_no_context_takeover; client_max_window_bits; server_no_context_takeover, " + pmd + "; client_no_context_takeover; client_max_window_bits"}, pol,
			pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8",
			with(func(p *Params) { p.ServerNoContextTakeover, p.ServerWindowBits = true, 8 })},
		{"other extension first", []string{`x-custom; a="b,c", ` + pmd}, pol, def, defP},
		{"offers over two header lines", []string{"x-webkit-deflate-frame", pmd + "; client_max_window_bits"}, pol, def, defP},
		{"bad offer on the first line, good on the second", []string{pmd + "; foo", pmd + "; server_no_context_takeover"}, pol,
			pmd + "; server_no_context_takeover; client_no_context_takeover", with(func(p *Params) { p.ServerNoContextTakeover = true })},
		{"unterminated quote stops the line", []string{`x; a="b, ` + pmd}, pol, "", Params{}},

		// The server's policy.
		{"server without context takeover", []string{pmd}, noServerCtx,
			pmd + "; server_no_context_takeover; client_no_context_takeover", with(func(p *Params) { p.ServerNoContextTakeover = true })},
		{"client context takeover allowed", []string{pmd + "; client_max_window_bits"}, clientCtx, pmd, Params{ServerWindowBits: 15, ClientWindowBits: 15}},
		{"client context takeover, client offers none", []string{pmd + "; client_no_context_takeover"}, clientCtx, def, defP},
		{"client window 10, offered without value", []string{pmd + "; client_max_window_bits"}, clientCtx10,
			pmd + "; client_max_window_bits=10", Params{ServerWindowBits: 15, ClientWindowBits: 10}},
		{"client window 10, offered 12", []string{pmd + "; client_max_window_bits=12"}, clientCtx10,
			pmd + "; client_max_window_bits=10", Params{ServerWindowBits: 15, ClientWindowBits: 10}},
		{"client window 10, offered 9", []string{pmd + "; client_max_window_bits=9"}, clientCtx10,
			pmd, Params{ServerWindowBits: 15, ClientWindowBits: 9}},
		{"client window 10, not offered", []string{pmd}, clientCtx10, def, defP},
		{"server window 10", []string{pmd}, server10,
			def + "; server_max_window_bits=10", with(func(p *Params) { p.ServerWindowBits = 10 })},
		{"server window 10, offered 12", []string{pmd + "; server_max_window_bits=12"}, server10,
			def + "; server_max_window_bits=10", with(func(p *Params) { p.ServerWindowBits = 10 })},
		{"server window 10, offered 9", []string{pmd + "; server_max_window_bits=9"}, server10,
			def + "; server_max_window_bits=9", with(func(p *Params) { p.ServerWindowBits = 9 })},
		{"server window 8", []string{pmd}, server8,
			def + "; server_max_window_bits=8", with(func(p *Params) { p.ServerWindowBits = 8 })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var vs [][]byte
			for _, v := range tc.values {
				vs = append(vs, []byte(v))
			}
			p, resp, ok := Negotiate(nil, slices.Values(vs), tc.pol)
			require.Equal(t, tc.want, string(resp))
			require.Equal(t, tc.want != "", ok)
			require.Equal(t, tc.params, p)
			if ok {
				_, err := wstest.ParseDeflateResponse(string(resp), strings.Contains(strings.Join(tc.values, ","), "client_max_window_bits"))
				require.NoError(t, err, "a strict client refuses the response")
			}
		})
	}
}

func TestPassthrough(t *testing.T) {
	for _, tc := range []struct {
		p    Params
		want bool
	}{
		{Params{ClientNoContextTakeover: true, ServerWindowBits: 15, ClientWindowBits: 15}, true},
		{Params{ClientNoContextTakeover: false, ServerWindowBits: 15, ClientWindowBits: 15}, false},
		{Params{ClientNoContextTakeover: true, ServerWindowBits: 10, ClientWindowBits: 15}, false},
		{Params{ClientNoContextTakeover: true, ServerWindowBits: 10, ClientWindowBits: 10}, true},
		{Params{ClientNoContextTakeover: true, ServerWindowBits: 8, ClientWindowBits: 8}, false},
		{Params{ClientNoContextTakeover: true, ServerWindowBits: 9, ClientWindowBits: 8}, true},
	} {
		require.Equal(t, tc.want, tc.p.Passthrough(), "%+v", tc.p)
	}
}

// FuzzNegotiate: whatever the offers, Negotiate never panics, and what it
// accepts it states in a response a strict client accepts, with the
// parameters it returns, within what the client offered and the policy.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{
		pmd, pmd + "; client_max_window_bits", pmd + "; server_max_window_bits=10; client_no_context_takeover",
		pmd + `; server_max_window_bits="9", x-foo; bar="a,b"`, pmd + "; server_no_context_takeover; server_no_context_takeover",
		pmd + "; client_max_window_bits=8, " + pmd, ",,, ;=\"", pmd + `; a="\`,
	} {
		f.Add([]byte(s), uint8(15), uint8(15), true, false)
	}
	f.Fuzz(func(t *testing.T, v []byte, serverBits, clientBits uint8, serverCtx, clientCtx bool) {
		pol := Policy{ServerContextTakeover: serverCtx, ClientContextTakeover: clientCtx,
			ServerWindowBits: int(8 + serverBits%8), ClientWindowBits: int(8 + clientBits%8)}
		p, resp, ok := Negotiate(nil, slices.Values([][]byte{v}), pol)
		if !ok {
			if resp != nil || p != (Params{}) {
				t.Fatalf("declined with a response %q or params %+v", resp, p)
			}
			return
		}
		d, err := wstest.ParseDeflateResponse(string(resp), true)
		if err != nil {
			t.Fatalf("response %q to %q: %v", resp, v, err)
		}
		switch {
		case d.ServerNoContextTakeover != p.ServerNoContextTakeover, d.ClientNoContextTakeover != p.ClientNoContextTakeover:
			t.Fatalf("response %q, params %+v", resp, p)
		case int(p.ServerWindowBits) > pol.ServerWindowBits || d.ServerMaxWindowBits != 0 && d.ServerMaxWindowBits != int(p.ServerWindowBits):
			t.Fatalf("server window %d (response %q) over the policy's %d", p.ServerWindowBits, resp, pol.ServerWindowBits)
		case !p.ClientNoContextTakeover && int(p.ClientWindowBits) > pol.ClientWindowBits:
			t.Fatalf("client window %d over the policy's %d", p.ClientWindowBits, pol.ClientWindowBits)
		case !serverCtx && !p.ServerNoContextTakeover, !clientCtx && !p.ClientNoContextTakeover:
			t.Fatalf("context takeover against the policy: %+v", p)
		}
	})
}

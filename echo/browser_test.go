package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// TestBrowser loads a page into headless Chromium that connects to echo
// (with -compression), checks what the browser negotiated (ws.extensions)
// and echoes text and binary messages of several sizes, byte for byte. The
// test drives Chromium through the DevTools protocol (a WebSocket of its
// own). It needs Chromium: HIOLOAD_BROWSER names the binary
// (scripts/browser-test.sh sets it to Debian's /usr/bin/chromium), so
// that the plain `go test ./...` runs do not start a browser twice.
func TestBrowser(t *testing.T) {
	browser := os.Getenv("HIOLOAD_BROWSER")
	if browser == "" {
		t.Skip("HIOLOAD_BROWSER is not set: scripts/browser-test.sh runs this test with Chromium")
	}
	bin := buildEcho(t)
	s := start(t, nil, bin, "-workers", "2", "-compression", "-metrics", "127.0.0.1:0")
	line, err := s.stdout.ReadString('\n')
	require.NoError(t, err)
	metrics, ok := strings.CutPrefix(strings.TrimSpace(line), "echo: metrics on ")
	require.True(t, ok, "unexpected line %q", line)

	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, browserPage)
	}))
	t.Cleanup(page.Close)

	cdp := startChromium(t, browser)
	cdp.call(t, "Page.navigate", map[string]any{"url": page.URL + "/?ws=" + s.addr})
	var result struct {
		Extensions string   `json:"extensions"`
		Protocol   string   `json:"protocol"`
		Done       []string `json:"done"`
		Error      string   `json:"error"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var r struct {
			Result struct {
				Value string `json:"value"`
			} `json:"result"`
		}
		cdp.call(t, "Runtime.evaluate", map[string]any{"expression": "window.result || ''", "returnByValue": true}, &r)
		if r.Result.Value != "" {
			require.NoError(t, json.Unmarshal([]byte(r.Result.Value), &result))
			break
		}
		require.True(t, time.Now().Before(deadline), "the page did not finish in 60 s")
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("Chromium %s negotiated Sec-WebSocket-Extensions: %s", cdp.version, result.Extensions)
	for _, d := range result.Done {
		t.Logf("  ok %s", d)
	}
	require.Empty(t, result.Error)
	require.True(t, strings.HasPrefix(result.Extensions, "permessage-deflate"), "extensions %q", result.Extensions)
	require.Len(t, result.Done, 2*len(browserSizes)+1)

	// The server saw the browser's messages compressed and sent its echoes
	// compressed.
	resp, err := http.Get(metrics)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, m := range []string{"hioload_deflate_messages_in_total", "hioload_deflate_messages_out_total"} {
		v := regexp.MustCompile(`(?m)^` + m + ` (\d+)`).FindSubmatch(body)
		require.NotNil(t, v, "no %s in /metrics", m)
		n, _ := strconv.Atoi(string(v[1]))
		require.GreaterOrEqual(t, n, 2*len(browserSizes), "%s", m)
		t.Logf("  %s %d", m, n)
	}
}

// browserSizes are the message sizes the page echoes, as text and binary.
var browserSizes = []int{0, 1, 125, 126, 1000, 65535, 65536, 1 << 20}

// browserPage echoes its messages through the server named by ?ws= and
// puts the outcome in window.result, as JSON.
var browserPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>hioload-ws browser test</title></head><body><script>
const sizes = ` + strings.ReplaceAll(fmt.Sprint(browserSizes), " ", ",") + `;
const done = [];
function finish(error) {
  window.result = JSON.stringify({extensions: ws.extensions, protocol: ws.protocol, done, error: error || ""});
}
function text(n) { // JSON-like text with multi-byte characters, n UTF-8 bytes
  let s = "";
  for (let i = 0; s.length < n; i++) s += '{"id":' + i + ',"name":"Zoë €' + (i % 7) + '"},';
  const b = new TextEncoder().encode(s).slice(0, n);
  let t = new TextDecoder("utf-8", {fatal: false}).decode(b);
  while (new TextEncoder().encode(t).length > n || t.endsWith("\ufffd")) t = t.slice(0, -1);
  return t.padEnd(t.length + n - new TextEncoder().encode(t).length, "x");
}
function binary(n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 255;
  return b;
}
const ws = new WebSocket("ws://" + new URLSearchParams(location.search).get("ws") + "/");
ws.binaryType = "arraybuffer";
const waiting = [];
ws.onmessage = (e) => waiting.shift()(e.data);
ws.onerror = () => finish("WebSocket error");
function echo(msg) {
  return new Promise((resolve) => { waiting.push(resolve); ws.send(msg); });
}
ws.onopen = async () => {
  try {
    for (const n of sizes) {
      const t = text(n);
      const got = await echo(t);
      if (got !== t) return finish("text of " + n + " bytes came back different");
      done.push("text " + n + " bytes");
      const b = binary(n);
      const gb = new Uint8Array(await echo(b));
      if (gb.length !== n || gb.some((v, i) => v !== b[i])) return finish("binary of " + n + " bytes came back different");
      done.push("binary " + n + " bytes");
    }
    ws.onclose = (e) => {
      if (e.code === 1000) done.push("close 1000");
      finish(e.code === 1000 ? "" : "closed with " + e.code);
    };
    ws.close(1000, "done");
  } catch (err) {
    finish(String(err));
  }
};
</script></body></html>
`

// chromium is a headless Chromium driven through the DevTools protocol on
// one page.
type chromium struct {
	conn    *websocket.Conn
	next    int
	version string
}

// startChromium starts the browser with a fresh profile and no network
// services (the network here is closed: Chromium would wait for them) and
// connects to its page. It is killed when the test ends.
func startChromium(t *testing.T, browser string) *chromium {
	t.Helper()
	profile := t.TempDir()
	cmd := exec.Command(browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir="+profile, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank")
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// With port 0, Chromium writes the port it took to DevToolsActivePort.
	var port string
	for deadline := time.Now().Add(30 * time.Second); port == ""; {
		if b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			port, _, _ = strings.Cut(string(b), "\n")
		}
		require.True(t, time.Now().Before(deadline), "Chromium did not open its DevTools port; stderr:\n%s", stderr)
		time.Sleep(50 * time.Millisecond)
	}
	c := &chromium{}
	var version struct{ Browser string }
	getJSON(t, "http://127.0.0.1:"+port+"/json/version", &version)
	c.version = version.Browser
	var targets []struct{ Type, WebSocketDebuggerURL string }
	getJSON(t, "http://127.0.0.1:"+port+"/json/list", &targets)
	for _, tg := range targets {
		if tg.Type == "page" {
			conn, _, err := websocket.DefaultDialer.Dial(tg.WebSocketDebuggerURL, nil)
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })
			c.conn = conn
			return c
		}
	}
	t.Fatalf("no page among Chromium's targets: %+v", targets)
	return nil
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.NoError(t, json.NewDecoder(bufio.NewReader(resp.Body)).Decode(v))
}

// call sends a DevTools command and waits for its result (events in
// between are skipped), decoding it into out when given.
func (c *chromium) call(t *testing.T, method string, params map[string]any, out ...any) {
	t.Helper()
	c.next++
	id := c.next
	require.NoError(t, c.conn.SetWriteDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, c.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params}))
	for {
		require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		require.NoError(t, c.conn.ReadJSON(&msg), "waiting for %s", method)
		if msg.ID != id {
			continue
		}
		require.Nil(t, msg.Error, "%s", method)
		if len(out) > 0 {
			require.NoError(t, json.Unmarshal(msg.Result, out[0]))
		}
		return
	}
}

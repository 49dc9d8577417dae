package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// configMap lays out a directory the way the kubelet mounts a ConfigMap:
// the data in a timestamped directory, "..data" a link to it, and each key a
// link through "..data". update swaps in new data atomically, as the kubelet
// does: a new directory, a new link renamed over "..data".
type configMap struct {
	t   *testing.T
	dir string
	gen int
}

func newConfigMap(t *testing.T, body string) *configMap {
	m := &configMap{t: t, dir: t.TempDir()}
	m.update(body)
	require.NoError(t, os.Symlink(filepath.Join("..data", "echo.json"), filepath.Join(m.dir, "echo.json")))
	return m
}

func (m *configMap) path() string { return filepath.Join(m.dir, "echo.json") }

func (m *configMap) update(body string) {
	m.gen++
	data := filepath.Join(m.dir, "..2026_01_01_00_00_0"+string(rune('0'+m.gen)))
	require.NoError(m.t, os.Mkdir(data, 0o755))
	require.NoError(m.t, os.WriteFile(filepath.Join(data, "echo.json"), []byte(body), 0o644))
	tmp := filepath.Join(m.dir, "..data_tmp")
	require.NoError(m.t, os.Symlink(filepath.Base(data), tmp))
	require.NoError(m.t, os.Rename(tmp, filepath.Join(m.dir, "..data")))
}

// TestConfigWatch: a ConfigMap update reaches a running echo without a
// signal; a bad update is refused once (one log line, settings unchanged),
// and the next good one applies.
func TestConfigWatch(t *testing.T) {
	bin := buildEcho(t)
	cm := newConfigMap(t, `{"batch_size": 16}`)
	s := start(t, nil, bin, "-workers", "1", "-config", cm.path(), "-config-watch", "100ms", "-metrics", "127.0.0.1:0")
	metrics := adminBase(t, s) + "/metrics"
	require.Equal(t, 16.0, gauge(t, metrics, "hioload_batch_size"))

	cm.update(`{"batch_size": 8, "max_frame_size": 1000, "max_message_size": 1000}`)
	require.Eventually(t, func() bool { return gauge(t, metrics, "hioload_batch_size") == 8 },
		10*time.Second, 50*time.Millisecond, "the ConfigMap change did not reach echo")
	require.Equal(t, 1000.0, gauge(t, metrics, "hioload_max_message_bytes"))

	cm.update(`{"batch_size": 0}`)
	time.Sleep(time.Second) // ten checks
	require.Equal(t, 8.0, gauge(t, metrics, "hioload_batch_size"), "a bad file changes nothing")
	require.Equal(t, 1, strings.Count(s.stderr.String(), "config not reloaded"), "a bad file is reported once")

	cm.update(`{"batch_size": 4}`)
	require.Eventually(t, func() bool { return gauge(t, metrics, "hioload_batch_size") == 4 },
		10*time.Second, 50*time.Millisecond)
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, s.cmd.Wait())
}

// TestConfigWatchOff: with -config-watch 0 only SIGHUP reloads.
func TestConfigWatchOff(t *testing.T) {
	bin := buildEcho(t)
	cm := newConfigMap(t, `{"batch_size": 16}`)
	s := start(t, nil, bin, "-workers", "1", "-config", cm.path(), "-config-watch", "0", "-metrics", "127.0.0.1:0")
	metrics := adminBase(t, s) + "/metrics"
	cm.update(`{"batch_size": 8}`)
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, 16.0, gauge(t, metrics, "hioload_batch_size"))
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return gauge(t, metrics, "hioload_batch_size") == 8 },
		5*time.Second, 20*time.Millisecond)
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hioload-ws/hioload-ws/ws"
)

// configFile is the -config file: applied at start, again on SIGHUP, and,
// with -config-watch, whenever its content changes. A Kubernetes ConfigMap
// mounted as a volume changes that way: the kubelet writes the new files
// into a fresh directory and swaps a symbolic link, sending no signal; the
// file's content is compared, not its mtime, so that the swap is seen
// whatever times the files carry. A nil *configFile (no -config) does
// nothing.
type configFile struct {
	path string
	ctrl *ws.Control
	log  *slog.Logger
	stop chan struct{}

	mu      sync.Mutex // the fields below; one reload at a time
	last    []byte     // the content last applied or refused
	lastErr string     // the last read error, logged once
	stopped bool
}

// maxConfigBytes bounds the file, as ws.Control.ReloadFile does.
const maxConfigBytes = 1 << 20

func newConfigFile(path string, ctrl *ws.Control, log *slog.Logger) (*configFile, error) {
	if path == "" {
		return nil, nil
	}
	b, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	return &configFile{path: path, ctrl: ctrl, log: log, stop: make(chan struct{}), last: b}, nil
}

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err == nil && len(b) > maxConfigBytes {
		err = fmt.Errorf("%s: larger than %d bytes", path, maxConfigBytes)
	}
	return b, err
}

// reload applies the file now, whatever its content (SIGHUP); a bad file
// changes nothing.
func (c *configFile) reload(why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, err := readConfig(c.path); err == nil {
		c.last = b
	}
	c.apply(why)
}

// apply runs ReloadFile and logs the outcome; c.mu is held.
func (c *configFile) apply(why string) {
	if err := c.ctrl.ReloadFile(c.path); err != nil {
		c.log.Error(why+": config not reloaded; settings unchanged", "err", err)
		return
	}
	lvl, _ := c.ctrl.LogLevel()
	c.log.Info(why+": config reloaded", "file", c.path, "log_level", lvl.String())
}

// check applies the file if its content changed since it was last seen.
func (c *configFile) check() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	b, err := readConfig(c.path)
	if err != nil {
		if err.Error() != c.lastErr { // a missing file stays one log line
			c.lastErr = err.Error()
			c.log.Warn("config watch: cannot read the file; settings unchanged", "err", err)
		}
		return
	}
	c.lastErr = ""
	if bytes.Equal(b, c.last) {
		return
	}
	c.last = b
	c.apply("config watch: " + c.path + " changed")
}

// watch checks the file every interval until stopWatching.
func (c *configFile) watch(every time.Duration) {
	if c == nil || every <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c.check()
			case <-c.stop:
				return
			}
		}
	}()
}

// stopWatching ends the watch; the shutdown calls it. It is safe to call
// more than once.
func (c *configFile) stopWatching() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		c.stopped = true
		close(c.stop)
	}
}

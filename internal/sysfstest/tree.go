package sysfstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Extract unpacks a fake sysfs tree into dir. The archive is txtar-like: text
// before the first marker is a comment, "-- path --" starts a file whose
// content runs to the next marker, and "-- path -> target --" makes a symbolic
// link, as sysfs links class/net/NAME to its device. Paths must be relative and
// stay inside dir; link targets must be relative. On Windows, making the links
// needs a privilege that most accounts lack: callers skip on that error.
func Extract(archive []byte, dir string) error {
	type link struct{ path, target string }
	var links []link
	var cur *strings.Builder
	var curPath string
	files := map[string]*strings.Builder{}
	var order []string
	for line := range strings.Lines(string(archive)) {
		name, isMarker := marker(line)
		if !isMarker {
			if cur != nil {
				cur.WriteString(line)
			}
			continue
		}
		cur = nil
		if p, target, ok := strings.Cut(name, " -> "); ok {
			if filepath.IsAbs(target) {
				return fmt.Errorf("sysfstest: link %s: absolute target %s", p, target)
			}
			links = append(links, link{p, target})
			continue
		}
		curPath = name
		cur = &strings.Builder{}
		files[curPath] = cur
		order = append(order, curPath)
	}
	for _, p := range order {
		if err := writeTreeFile(dir, p, files[p].String()); err != nil {
			return err
		}
	}
	// Links last, so that no file is written through one.
	for _, l := range links {
		full, err := treePath(dir, l.path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("sysfstest: %w", err)
		}
		if err := os.Symlink(l.target, full); err != nil {
			return fmt.Errorf("sysfstest: %w", err)
		}
	}
	return nil
}

func marker(line string) (string, bool) {
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "-- ") || !strings.HasSuffix(line, " --") || len(line) < 7 {
		return "", false
	}
	return strings.TrimSpace(line[3 : len(line)-3]), true
}

func treePath(dir, p string) (string, error) {
	if p == "" || filepath.IsAbs(p) || !filepath.IsLocal(p) {
		return "", fmt.Errorf("sysfstest: path %q not inside the tree", p)
	}
	return filepath.Join(dir, p), nil
}

func writeTreeFile(dir, p, content string) error {
	full, err := treePath(dir, p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return fmt.Errorf("sysfstest: %w", err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		return fmt.Errorf("sysfstest: %w", err)
	}
	return nil
}

package sysfstest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestExtract(t *testing.T) {
	a := "comment\n-- devices/system/node/online --\n0-1\n-- class/net/eth0 -> ../../devices/pci/net/eth0 --\n"
	dir := t.TempDir()
	if err := Extract([]byte(a), dir); err != nil {
		if runtime.GOOS == "windows" {
			t.Skipf("symbolic links need privileges on windows: %v", err)
		}
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "devices", "system", "node", "online"))
	if err != nil || string(b) != "0-1\n" {
		t.Fatalf("online = %q, %v", b, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "class", "net", "eth0")); err != nil || target != "../../devices/pci/net/eth0" {
		t.Fatalf("link = %q, %v", target, err)
	}
}

func TestExtractRejectsEscapes(t *testing.T) {
	for _, a := range []string{"-- ../x --\n1\n", "-- /etc/x --\n1\n", "-- a -> /etc --\n"} {
		if err := Extract([]byte(a), t.TempDir()); err == nil {
			t.Errorf("Extract(%q) succeeded", a)
		}
	}
}

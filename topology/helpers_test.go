package topology

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/hioload-ws/hioload-ws/cnuma"
	"github.com/hioload-ws/hioload-ws/internal/sysfstest"
)

// trees caches unpacked fake sysfs trees for the whole test binary: unpacking
// writes a few hundred files, and tests only read them.
var (
	treesMu  sync.Mutex
	trees    = map[string]string{}
	treeRoot string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if treeRoot != "" {
		os.RemoveAll(treeRoot)
	}
	os.Exit(code)
}

// fakeMachine reads the fake sysfs tree <name> that cnuma's tests share
// (cnuma/testdata/sysfs/<name>.txtar).
func fakeMachine(t *testing.T, name string) *Topology {
	t.Helper()
	topo, err := FromSysFS(treeDir(t, name))
	if err != nil {
		t.Fatalf("FromSysFS(%s): %v", name, err)
	}
	return topo
}

// synthetic loads an hwloc synthetic topology, skipping where the build has no
// hwloc (CGO_ENABLED=0); the fake sysfs trees cover the same plans there.
func synthetic(t *testing.T, desc string) *Topology {
	t.Helper()
	topo, err := LoadSynthetic(desc)
	if errors.Is(err, cnuma.ErrNoHwloc) {
		t.Skipf("hwloc not in this build: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func treeDir(t *testing.T, name string) string {
	t.Helper()
	treesMu.Lock()
	defer treesMu.Unlock()
	if dir, ok := trees[name]; ok {
		return dir
	}
	var err error
	if treeRoot == "" {
		if treeRoot, err = os.MkdirTemp("", "topology-sysfs-"); err != nil {
			t.Fatal(err)
		}
	}
	b, err := readArchive(name)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(treeRoot, name)
	if err := sysfstest.Extract(b, dir); err != nil {
		if runtime.GOOS == "windows" {
			t.Skipf("fake sysfs trees hold symbolic links, which need privileges on windows: %v", err)
		}
		t.Fatal(err)
	}
	trees[name] = dir
	return dir
}

func readArchive(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("..", "cnuma", "testdata", "sysfs", name+".txtar"))
}

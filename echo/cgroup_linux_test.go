package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hioload-ws/hioload-ws/topology"
)

// childCGroup makes a cgroup for controller ctrl below this process's own
// (so that it stays inside whatever holds the test) and writes files into
// it: on the unified hierarchy (v2) when the controller can be enabled
// there, else on a v1 hierarchy. It returns the prefix that starts a
// command inside it and which kind it made; "" when neither can be made
// here (not root, no such controller, a v2 parent with processes of its
// own), with the reason.
func childCGroup(t *testing.T, ctrl string, files func(version int) [][2]string) (prefix []string, kind string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, "not root"
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	require.NoError(t, err)
	lines, err := topology.ParseProcCGroup(b)
	require.NoError(t, err)
	b, err = os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	mounts, err := topology.ParseCGroupMounts(b)
	require.NoError(t, err)
	var why []string
	for _, version := range []int{2, 1} {
		parent, ok := ownCGroup(lines, mounts, ctrl, version)
		if !ok {
			why = append(why, fmt.Sprintf("no v%d %s hierarchy", version, ctrl))
			continue
		}
		dir, err := makeCGroup(parent, ctrl, version, files(version))
		if err != nil {
			why = append(why, fmt.Sprintf("v%d: %v", version, err))
			continue
		}
		t.Cleanup(func() {
			// The processes are gone (start's cleanup runs first); the
			// kernel may take a moment to let the directory go.
			for range 50 {
				if os.Remove(dir) == nil || os.IsNotExist(os.Remove(dir)) {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("could not remove cgroup %s", dir)
		})
		enter := fmt.Sprintf(`echo $$ > %q && exec "$0" "$@"`, filepath.Join(dir, "cgroup.procs"))
		return []string{"sh", "-c", enter}, fmt.Sprintf("cgroup v%d %s at %s", version, ctrl, dir)
	}
	return nil, strings.Join(why, "; ")
}

// ownCGroup is this process's cgroup directory on the hierarchy of the
// given version that carries ctrl.
func ownCGroup(lines []topology.CGroupLine, mounts []topology.CGroupMount, ctrl string, version int) (string, bool) {
	for _, m := range mounts {
		if m.Version != version || version == 1 && !slices.Contains(m.Controllers, ctrl) {
			continue
		}
		for _, l := range lines {
			if version == 2 && l.ID == 0 && len(l.Controllers) == 0 || version == 1 && slices.Contains(l.Controllers, ctrl) {
				rel := strings.TrimPrefix(l.Path, m.Root)
				if m.Root == "/" {
					rel = l.Path
				}
				dir := filepath.Join(m.Point, rel)
				if version == 2 {
					c, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
					if err != nil || !slices.Contains(strings.Fields(string(c)), ctrl) {
						return "", false
					}
				}
				return dir, true
			}
		}
	}
	return "", false
}

// makeCGroup makes a child of parent with the controller on and the files
// written; it removes what it made when that fails.
func makeCGroup(parent, ctrl string, version int, files [][2]string) (string, error) {
	if version == 2 {
		sub := filepath.Join(parent, "cgroup.subtree_control")
		if err := os.WriteFile(sub, []byte("+"+ctrl), 0); err != nil {
			return "", fmt.Errorf("enable %s below %s: %w", ctrl, parent, err)
		}
	}
	dir := filepath.Join(parent, fmt.Sprintf("hioload-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0); err != nil {
			os.Remove(dir)
			return "", fmt.Errorf("%s: %w", f[0], err)
		}
	}
	return dir, nil
}

// TestCGroupCpuset: echo started inside a cgroup whose cpuset is one CPU
// (what the kubelet's static CPU Manager gives a container) reads that
// cpuset, plans one loop there and pins it there. Where no cgroup can be
// made, the same CPU is given by affinity (taskset), and the log says so.
func TestCGroupCpuset(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs: a cpuset of one must leave another out")
	}
	bin := buildEcho(t)
	cpu := runtime.NumCPU() - 1
	prefix, kind := childCGroup(t, "cpuset", func(version int) [][2]string {
		if version == 2 {
			return [][2]string{{"cpuset.cpus", fmt.Sprint(cpu)}}
		}
		mems, _ := os.ReadFile("/sys/fs/cgroup/cpuset/cpuset.mems")
		return [][2]string{{"cpuset.cpus", fmt.Sprint(cpu)}, {"cpuset.mems", strings.TrimSpace(string(mems))}}
	})
	inCGroup := prefix != nil
	if !inCGroup {
		t.Logf("no cgroup here (%s): confining by affinity instead (taskset -c %d)", kind, cpu)
		prefix = []string{"taskset", "-c", fmt.Sprint(cpu)}
	} else {
		t.Logf("confined by a %s", kind)
	}

	r, out, err := checkJSON(t, prefix, bin)
	require.NoError(t, err, out)
	require.Equal(t, 1, r.Loops, "one loop for a cpuset of one cpu")
	if inCGroup {
		rep, err := runIn(prefix, bin, "-topology")
		require.NoError(t, err, rep)
		require.Contains(t, rep, fmt.Sprintf(": cpus %d, memory nodes", cpu), "the report shows the cgroup's cpuset")
	}

	s := start(t, prefix, bin)
	requireLoops(t, s, map[string]string{"reactor-0": fmt.Sprint(cpu)})
}

// TestCGroupMemoryLimit: in a cgroup with a 512 MiB memory limit, echo
// lowers its default heap budget to fit and says so at start, and refuses
// a -max-heap of 1 GiB rather than be killed for it later.
func TestCGroupMemoryLimit(t *testing.T) {
	bin := buildEcho(t)
	const limit = 512 << 20
	prefix, kind := childCGroup(t, "memory", func(version int) [][2]string {
		if version == 2 {
			return [][2]string{{"memory.max", fmt.Sprint(limit)}}
		}
		return [][2]string{{"memory.limit_in_bytes", fmt.Sprint(limit)}}
	})
	if prefix == nil {
		t.Skipf("no memory cgroup can be made here: %s (TestFitMemory covers the arithmetic)", kind)
	}
	t.Logf("limited by a %s", kind)

	r, out, err := checkJSON(t, prefix, bin)
	require.NoError(t, err, out)
	require.Equal(t, int64(limit), r.MemoryLimit)
	require.Equal(t, "cgroup memory.max", r.MemorySource)
	require.Less(t, r.MaxHeap, int64(limit), "the 1 GiB default is lowered")
	require.Positive(t, r.GoMemoryLimit)
	require.Less(t, r.GoMemoryLimit, int64(limit))

	s := start(t, prefix, bin, "-workers", "1")
	require.Eventually(t, func() bool { return strings.Contains(s.stderr.String(), "memory: fitted to the limit") },
		5*time.Second, 20*time.Millisecond)
	require.Contains(t, s.stderr.String(), "max_heap_lowered=true")
	require.Zero(t, roundTrip(t, s.addr, 100000))

	out, err = runIn(prefix, bin, "-addr", "127.0.0.1:0", "-max-heap", "1073741824")
	require.Error(t, err, "a 1 GiB -max-heap in a 512 MiB cgroup must be refused: %s", out)
	require.Contains(t, out, "does not fit the memory limit 512 MiB (cgroup memory.max)")
}

// runIn runs prefix + bin + args and returns its combined output.
func runIn(prefix []string, bin string, args ...string) (string, error) {
	argv := append(append(slices.Clone(prefix), bin), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

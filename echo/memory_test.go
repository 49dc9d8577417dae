package main

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFitMemory(t *testing.T) {
	const pool = 76 << 20
	tests := []struct {
		name    string
		limit   int64
		pools   int
		maxHeap int64
		set     bool
		want    memoryBudget // Limit, Source, Pools, PoolBytes are filled in
		err     string
	}{
		{name: "no limit: nothing changes", maxHeap: defaultMaxHeap, pools: 1,
			want: memoryBudget{MaxHeap: defaultMaxHeap}},
		{name: "512 MiB pod: the default heap budget is lowered", limit: 512 << 20, pools: 1, maxHeap: defaultMaxHeap,
			want: memoryBudget{Reserve: 64 << 20, GoLimit: 372 << 20, MaxHeap: 186 << 20, Sized: true}},
		{name: "8 GiB: an eighth is reserved, the default fits", limit: 8 << 30, pools: 2, maxHeap: defaultMaxHeap,
			want: memoryBudget{Reserve: 1 << 30, GoLimit: 7<<30 - 2*pool, MaxHeap: defaultMaxHeap}},
		{name: "a -max-heap that fits is kept", limit: 512 << 20, pools: 1, maxHeap: 300 << 20, set: true,
			want: memoryBudget{Reserve: 64 << 20, GoLimit: 372 << 20, MaxHeap: 300 << 20}},
		{name: "a -max-heap of 1 GiB in 512 MiB is refused", limit: 512 << 20, pools: 1, maxHeap: 1 << 30, set: true,
			err: "-max-heap 1024 MiB does not fit the memory limit 512 MiB (cgroup memory.max)"},
		{name: "an unbounded -max-heap under a limit is refused", limit: 512 << 20, pools: 1, maxHeap: 0, set: true,
			err: "-max-heap 0 (no bound) does not fit"},
		{name: "too small for the pools", limit: 128 << 20, pools: 2, maxHeap: defaultMaxHeap,
			err: "memory limit 128 MiB (cgroup memory.max) is too small: 2 buffer pool(s) of 76 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fitMemory(tc.limit, "cgroup memory.max", tc.pools, pool, tc.maxHeap, tc.set)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.want.Limit, tc.want.Source, tc.want.Pools, tc.want.PoolBytes = tc.limit, "cgroup memory.max", tc.pools, pool
			require.Equal(t, tc.want, got)
		})
	}
}

// TestFitMemoryAdvice: the least limit the error names is enough, and a
// little less is not.
func TestFitMemoryAdvice(t *testing.T) {
	for _, pools := range []int{1, 2, 4, 8} {
		const pool = 76 << 20
		_, err := fitMemory(1<<20, "x", pools, pool, defaultMaxHeap, false)
		require.Error(t, err)
		poolTotal := int64(pools) * pool
		need := max(poolTotal+minReserve+minGoRoom, (poolTotal+minGoRoom)*8/7+1)
		_, err = fitMemory(need, "x", pools, pool, defaultMaxHeap, false)
		require.NoError(t, err, "%d pools, limit %d", pools, need)
		_, err = fitMemory(need-(1<<20), "x", pools, pool, defaultMaxHeap, false)
		require.Error(t, err, "%d pools, limit %d", pools, need-(1<<20))
	}
}

// checkJSON runs echo -check -json with args and decodes its report.
func checkJSON(t *testing.T, prefix []string, bin string, args ...string) (checkReport, string, error) {
	t.Helper()
	argv := append(append(prefix, bin, "-check", "-json"), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	var r checkReport
	if err == nil {
		require.NoError(t, json.Unmarshal(out, &r), "%s", out)
	}
	return r, string(out), err
}

// TestCheck: -check resolves every default and limit, prints them, and
// refuses what run would refuse, without listening.
func TestCheck(t *testing.T) {
	bin := buildEcho(t)
	r, out, err := checkJSON(t, nil, bin, "-addr", ":1", "-memory-limit", "536870912", "-drain-delay", "7s", "-metrics", ":9090")
	require.NoError(t, err, out)
	require.Equal(t, ":1", r.Addr, "nothing listens: port 1 needs no privilege to be named")
	require.Equal(t, int64(536870912), r.MemoryLimit)
	require.Equal(t, "-memory-limit", r.MemorySource)
	require.Less(t, r.MaxHeap, int64(defaultMaxHeap), "the heap budget is fitted to 512 MiB")
	require.Positive(t, r.PoolBytes)
	require.Equal(t, 7.0, r.DrainDelaySeconds)
	require.Equal(t, 5.0, r.ShutdownTimeoutSeconds)
	require.Equal(t, 10.0, r.ConfigWatchSeconds)
	require.Positive(t, r.Loops)

	for _, bad := range [][]string{
		{"-memory-limit", "536870912", "-max-heap", "1073741824"},
		{"-memory-limit", "10000000"},
		{"-drain-delay", "-1s"},
		{"-batch", "0"},
		{"-log-level", "loud"},
		{"-config", "/nonexistent/echo.json"},
	} {
		_, out, err := checkJSON(t, nil, bin, bad...)
		require.Error(t, err, "%v must be refused", bad)
		require.Contains(t, out, "echo: ", "%v: a clear error", bad)
	}
}

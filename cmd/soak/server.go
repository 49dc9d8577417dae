package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// serverStats reads the counters of the server under test from its
// /debug/probes page (echo -metrics), so that the report says what the
// server did about the attacks: connections refused at accept, evicted,
// dropped for a stalled write, memory refused, close codes sent.
func serverStats(base string) (map[string]any, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(strings.TrimSuffix(base, "/metrics") + "/debug/probes")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var all map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		return nil, err
	}
	srv, _ := all["server"].(map[string]any)
	if srv == nil {
		return nil, fmt.Errorf("/debug/probes: no server entry")
	}
	return srv, nil
}

// reportServer prints the server's view, summing the per-loop counters.
func reportServer(base string) {
	if base == "" {
		return
	}
	srv, err := serverStats(base)
	if err != nil {
		fmt.Println("server counters: not read:", err)
		return
	}
	loops := map[string]float64{}
	if ls, ok := srv["Loops"].([]any); ok {
		for _, l := range ls {
			m, _ := l.(map[string]any)
			for k, v := range m {
				if f, ok := v.(float64); ok {
					loops[k] += f
				}
			}
		}
	}
	fmt.Printf("server counters: accepted %.0f, refused at accept %.0f, upgraded %.0f, evicted (1013) %.0f, stalled writers dropped (1008) %.0f, buffers refused %.0f, heap fallbacks %.0f\n",
		srv["Accepted"], srv["Refused"], srv["Upgraded"], loops["Evicted"], loops["Stalled"], loops["MemRefused"], loops["HeapFallbacks"])
	fmt.Printf("server copies: in %.0f, out %.0f, grow %.0f, reassembled %.0f; queued without a copy %.0f; heap memory handed back %.0f times\n",
		loops["CopiedIn"], loops["CopiedOut"], loops["CopiedGrow"], srv["Reassembled"], loops["AdoptedOut"], srv["HeapReleases"])
	if codes, ok := srv["CloseCodes"].(map[string]any); ok {
		var ks []string
		for k := range codes {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var parts []string
		for _, k := range ks {
			parts = append(parts, fmt.Sprintf("%s×%.0f", k, codes[k]))
		}
		fmt.Printf("server close codes sent: %s\n", strings.Join(parts, " "))
	}
}

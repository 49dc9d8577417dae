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
	loops := map[string]any{}
	if ls, ok := srv["Loops"].([]any); ok {
		for _, l := range ls {
			m, _ := l.(map[string]any)
			for k, v := range m {
				if f, ok := v.(float64); ok {
					sum, _ := loops[k].(float64)
					loops[k] = sum + f
				}
			}
		}
	}
	fmt.Printf("server counters: accepted %s, refused at accept %s, upgraded %s, evicted (1013) %s, stalled writers dropped (1008) %s, buffers refused %s, heap fallbacks %s\n",
		num(srv["Accepted"]), num(srv["Refused"]), num(srv["Upgraded"]), num(loops["Evicted"]), num(loops["Stalled"]), num(loops["MemRefused"]), num(loops["HeapFallbacks"]))
	fmt.Printf("server copies: in %s, out %s, grow %s, reassembled %s; queued without a copy %s; heap memory handed back %s times\n",
		num(loops["CopiedIn"]), num(loops["CopiedOut"]), num(loops["CopiedGrow"]), num(srv["Reassembled"]), num(loops["AdoptedOut"]), num(srv["HeapReleases"]))
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

// num prints a counter, or "-" for one the server does not have.
func num(v any) string {
	if f, ok := v.(float64); ok {
		return fmt.Sprintf("%.0f", f)
	}
	return "-"
}

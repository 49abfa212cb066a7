package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkPropagation measures how long a change made through one replica
// takes to be served by two others sharing Postgres and Redis: each
// iteration flips EXAM_MODE through replica A and waits until B and C both
// evaluate the new revision over OFREP. The TTLs are set far beyond the
// run, so only invalidation (NOTIFY, Redis pub/sub) can deliver it.
// Reports p50 and p99 in milliseconds.
func BenchmarkPropagation(b *testing.B) {
	env := productionEnv(b)
	env["SWITCHYARD_TOKENS"] = "admin:" + testAdminSecret
	env["SWITCHYARD_CACHE_TTL"] = "1h"
	env["SWITCHYARD_REDIS_TTL"] = "1h"
	env["SWITCHYARD_LOG_LEVEL"] = "error"
	a := startServe(b, env)
	defer a.stop()
	followers := []*process{startServe(b, env, "--migrate=false"), startServe(b, env, "--migrate=false")}
	for _, f := range followers {
		defer f.stop()
	}
	client := &http.Client{Timeout: 5 * time.Second}
	served := func(p *process) int64 {
		resp, err := client.Post(p.url+"/ofrep/v1/evaluate/flags/EXAM_MODE", "application/json", strings.NewReader(`{"context":{}}`))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			Metadata struct{ Revision int64 } `json:"metadata"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			b.Fatal(err)
		}
		return r.Metadata.Revision
	}
	var took []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		on := i%2 == 0
		phrase := map[bool]string{true: "ENABLE EXAM MODE", false: "DISABLE EXAM MODE"}[on]
		req, _ := http.NewRequest(http.MethodPost, a.url+"/v1/admin/system/exam-mode",
			strings.NewReader(fmt.Sprintf(`{"enabled": %v, "phrase": %q, "reason": "propagation benchmark"}`, on, phrase)))
		req.Header.Set("Authorization", "Bearer "+testAdminSecret)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("change through replica A: %d", resp.StatusCode)
		}
		want := int64(i + 2)
		for _, f := range followers {
			for served(f) < want {
				if time.Since(start) > 10*time.Second {
					b.Fatalf("revision %d not served by a follower after 10s", want)
				}
			}
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	pct := func(p float64) float64 {
		return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

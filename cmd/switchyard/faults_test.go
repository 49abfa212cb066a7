package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/store/storetest"
)

// The values the load accepts: while a change is in flight either is right.
const (
	wantOff int32 = iota
	wantOn
	wantEither
)

// load evaluates EXAM_MODE over OFREP from a few goroutines until stopped,
// counting failures (anything but 200) and values other than want.
type load struct {
	url           string
	want          atomic.Int32
	evaluations   atomic.Int64
	failed, wrong atomic.Int64
	firstProblem  atomic.Value
	stop          chan struct{}
	wg            sync.WaitGroup
}

func startLoad(url string, want int32) *load {
	l := &load{url: url, stop: make(chan struct{})}
	l.want.Store(want)
	client := &http.Client{Timeout: 5 * time.Second}
	for range 4 {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.once(client)
			}
		})
	}
	return l
}

func (l *load) once(client *http.Client) {
	want := l.want.Load()
	resp, err := client.Post(l.url+"/ofrep/v1/evaluate/flags/EXAM_MODE", "application/json", strings.NewReader(`{"context":{}}`))
	l.evaluations.Add(1)
	if err != nil {
		l.problem(&l.failed, err.Error())
		return
	}
	defer resp.Body.Close()
	var r struct {
		Value  *bool  `json:"value"`
		Reason string `json:"reason"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil || r.Value == nil {
		l.problem(&l.failed, fmt.Sprintf("status %d", resp.StatusCode))
		return
	}
	if want != wantEither && *r.Value != (want == wantOn) {
		l.problem(&l.wrong, fmt.Sprintf("EXAM_MODE %v (%s), want %v", *r.Value, r.Reason, want == wantOn))
	}
}

func (l *load) problem(counter *atomic.Int64, what string) {
	counter.Add(1)
	l.firstProblem.CompareAndSwap(nil, what)
}

// waitFor evaluates until n more evaluations have been made, so each phase
// of the test is exercised under load rather than for a wall-clock time.
func (l *load) waitFor(t *testing.T, n int64) {
	t.Helper()
	target := l.evaluations.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.evaluations.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d evaluations in 30s", l.evaluations.Load(), target)
		}
		time.Sleep(time.Millisecond)
	}
}

func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

// readiness returns /readyz's status code and body.
func readiness(t *testing.T, p *process) (int, string) {
	t.Helper()
	resp, err := http.Get(p.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// until polls /readyz until cond holds, bounded by a deadline.
func until(t *testing.T, p *process, what string, cond func(code int, body string) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := readiness(t, p)
		if cond(code, body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz never became %s: last %d %s", what, code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func setExamMode(t *testing.T, p *process, on bool) int {
	t.Helper()
	phrase := map[bool]string{true: "ENABLE EXAM MODE", false: "DISABLE EXAM MODE"}[on]
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, p.url+"/v1/admin/system/exam-mode",
		strings.NewReader(fmt.Sprintf(`{"enabled": %v, "phrase": %q, "reason": "fault test"}`, on, phrase)))
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Under a steady evaluation load, cutting Postgres, then Redis, then both
// fails no evaluation and serves no wrong value; writes meanwhile answer
// 503; once both are back the service recovers by itself and serves a new
// change.
func TestStoreFaultsUnderLoad(t *testing.T) {
	env := productionEnv(t)
	pg, pgURL := storetest.Proxied(t, env["SWITCHYARD_DATABASE_URL"])
	redis, redisURL := storetest.Proxied(t, env["SWITCHYARD_REDIS_URL"])
	env["SWITCHYARD_DATABASE_URL"], env["SWITCHYARD_REDIS_URL"] = pgURL, redisURL
	env["SWITCHYARD_TOKENS"] = "admin:fault-admin-secret"
	// Short TTLs, so the outage is met by many reloads.
	env["SWITCHYARD_CACHE_TTL"], env["SWITCHYARD_REDIS_TTL"] = "50ms", "100ms"
	env["SWITCHYARD_LOG_LEVEL"] = "error"
	s := startServe(t, env)
	defer s.stop()
	s.token = "fault-admin-secret"
	if code := setExamMode(t, s, true); code != http.StatusOK {
		t.Fatalf("exam mode on: %d", code)
	}
	l := startLoad(s.url, wantOn)
	l.waitFor(t, 200)

	pg.Cut()
	until(t, s, "degraded with Postgres cut", func(code int, _ string) bool { return code == http.StatusServiceUnavailable })
	l.waitFor(t, 500)
	if code := setExamMode(t, s, false); code != http.StatusServiceUnavailable {
		t.Fatalf("a write with Postgres cut answered %d, want 503", code)
	}

	redis.Cut()
	l.waitFor(t, 500)
	pg.Restore()
	until(t, s, "degraded by Redis alone", func(code int, body string) bool {
		return code == http.StatusOK && strings.Contains(body, `"degraded"`)
	})
	l.waitFor(t, 500)
	pg.Cut()
	l.waitFor(t, 500)

	pg.Restore()
	redis.Restore()
	until(t, s, "ready", func(code int, body string) bool {
		return code == http.StatusOK && strings.Contains(body, `"ready"`)
	})
	l.waitFor(t, 200)
	l.want.Store(wantEither)
	if code := setExamMode(t, s, false); code != http.StatusOK {
		t.Fatalf("exam mode off after recovery: %d", code)
	}
	// The server installs its own change before answering, so every
	// evaluation that starts now must see it.
	l.want.Store(wantOff)
	l.waitFor(t, 200)
	l.end()
	if l.failed.Load() != 0 || l.wrong.Load() != 0 {
		t.Fatalf("%d evaluations: %d failed, %d wrong; first: %v", l.evaluations.Load(), l.failed.Load(), l.wrong.Load(), l.firstProblem.Load())
	}
	t.Logf("%d evaluations through the faults, none failed or wrong", l.evaluations.Load())
}

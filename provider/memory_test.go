package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/lru"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// cachedSessions is the figure: the default session cache size,
// whose heap should stay under 50 MB.
const cachedSessions = 100_000

// BenchmarkSessionCacheMemory measures the heap that an in-process
// provider's session cache holds for 100,000 pinned sessions.
//
// The sessions are real: a few are pinned over HTTP against the real
// server, one per revision (sessions in production pin to the few
// revisions live while they start), and their cache entries are then
// cloned under 100,000 distinct UUID-sized IDs. Pinning all 100,000 over
// HTTP would be slow, and worse, the in-process server would keep its own
// 100,000 snapshots on the same heap and swamp the figure. The compiled
// flag sets of those revisions are fetched before the baseline: they are a
// fixed cost shared by every session, not a per-session one.
//
// The figure is a metric, never a failure: heap sizes vary with the Go
// version and the platform.
func BenchmarkSessionCacheMemory(b *testing.B) {
	pinned := pinnedSessions(b)
	var before, after runtime.MemStats
	for b.Loop() {
		// A fresh cache each round, so the round measures a fill from empty.
		sessions := lru.New[string, session](cachedSessions)
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range cachedSessions {
			sessions.Add(fmt.Sprintf("%08x-5e55-4000-8000-%012x", i, i), pinned[i%len(pinned)])
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if n := sessions.Len(); n != cachedSessions {
			b.Fatalf("the cache holds %d sessions, want %d", n, cachedSessions)
		}
		runtime.KeepAlive(sessions)
	}
	grown := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	b.ReportMetric(grown/(1<<20), "MB/100k-sessions")
	b.ReportMetric(grown/cachedSessions, "B/session")
}

// pinnedSessions pins one session per revision through a provider against
// the real server, making a new revision between pins, and returns their
// cache entries.
func pinnedSessions(b *testing.B) []session {
	b.Helper()
	const token = "memory-bench-admin"
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(server.New(logger, control.New(logger, control.Config{}, memory.NewDemo()),
		server.Config{Auth: server.NewAuthenticator([]server.Token{{Operator: switchyard.Operator{Name: "admin", Role: switchyard.RoleAdmin}, Secret: token}})}))
	b.Cleanup(srv.Close)
	p, err := New(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := p.InitWithContext(ctx, openfeature.EvaluationContext{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Shutdown)
	changes := []map[string]any{
		{"flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"},
		{"flag": "FREEZE_UPDATES", "value": true, "phrase": "ENABLE FREEZE UPDATES", "reason": "migration"},
		{"flag": "EXAM_MODE", "value": false, "phrase": "DISABLE EXAM MODE", "reason": "exam over"},
	}
	var pinned []session
	for i := range len(changes) + 1 {
		id := fmt.Sprintf("s-pinned-%d", i)
		if err := p.StartSession(ctx, id, "u-1"); err != nil {
			b.Fatal(err)
		}
		s, ok := p.sessions.Get(id)
		if !ok {
			b.Fatalf("session %s was not cached", id)
		}
		if i > 0 && s.rev == pinned[i-1].rev {
			b.Fatalf("session %s is pinned to the same flag set as the one before it, want a new revision", id)
		}
		pinned = append(pinned, s)
		if i < len(changes) {
			adminChange(b, srv.URL, token, changes[i])
		}
	}
	return pinned
}

// adminChange makes one runtime change over the server's admin API.
func adminChange(b *testing.B, base, token string, change map[string]any) {
	b.Helper()
	body, err := json.Marshal(change)
	if err != nil {
		b.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/v1/admin/runtime/flags", strings.NewReader(string(body)))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(res.Body)
		b.Fatalf("POST /v1/admin/runtime/flags %v: %d %s", change, res.StatusCode, msg)
	}
}

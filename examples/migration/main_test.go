package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

const adminToken = "migration-admin"

// sideBySideClient starts a Switchyard server holding flags.json, connects
// the side-by-side client to it and to the old provider, and returns the
// client with the buffer its disagreement log goes to.
func sideBySideClient(t *testing.T, ctx context.Context) (*openfeature.Client, *syncBuffer) {
	t.Helper()
	sy := httptest.NewServer(newSwitchyard(memory.NewDemo()))
	t.Cleanup(sy.Close)
	importFlags(t, sy.URL, "flags.json")
	sw, err := provider.New(sy.URL)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	client, err := connect(ctx, oldProvider(), sw, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(openfeature.Shutdown)
	return client, logs
}

// TestSideBySide imports flags.json into a real Switchyard, as
// `switchyard import` does, and evaluates every flag through the
// side-by-side provider: the flags that match are served as they are and
// logged nowhere, checkout-theme (changed in the old system since the
// export) is served from the old provider and logged with both values, and
// holiday-mode (never imported) is logged as known to one provider only.
func TestSideBySide(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, logs := sideBySideClient(t, ctx)

	ann, bob := users[0], users[1]
	tests := []struct {
		flag string
		user openfeature.EvaluationContext
		def  any
		want any
	}{
		{"new-checkout", ann, false, true},
		{"new-checkout", bob, true, false},
		{"max-cart-items", ann, int64(10), int64(100)},
		{"discount-rate", ann, 0.0, 0.15},
		{"promo-banner", ann, map[string]any{}, map[string]any{"text": "Spring sale", "color": "green"}},
		// Disagreement: the old provider's value is served, and logged.
		{"checkout-theme", ann, "light", "dark"},
		// Only the old provider knows it: its value is served, and logged.
		{"holiday-mode", bob, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.flag+"/"+tt.user.TargetingKey(), func(t *testing.T) {
			got, err := evaluate(ctx, client, tt.flag, tt.def, tt.user)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%s = %#v, %v; want %#v", tt.flag, got, err, tt.want)
			}
		})
	}

	want := []map[string]any{
		{"level": "WARN", "msg": "flag disagreement", "flag": "checkout-theme", "targetingKey": "ann",
			oldName: "dark", switchyardName: "light"},
		{"level": "WARN", "msg": "flag known to one provider only", "flag": "holiday-mode", "provider": oldName, "value": true},
	}
	if got := logs.records(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("log = %v\nwant %v", got, want)
	}
}

// TestConcurrentEvaluations: the side-by-side provider serves concurrent
// evaluations of one flag without a data race (run with -race) and without
// a disagreement.
func TestConcurrentEvaluations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, logs := sideBySideClient(t, ctx)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if v, err := client.BooleanValue(ctx, "new-checkout", false, users[0]); !v || err != nil {
					t.Errorf("new-checkout = %v, %v; want true", v, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := logs.records(t); len(got) != 0 {
		t.Fatalf("log = %v, want nothing", got)
	}
}

// importFlags imports the flagd file at path over POST /v1/admin/import,
// the call `switchyard import --from flagd` makes.
func importFlags(t *testing.T, base, path string) {
	t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{"format": "flagd", "content": string(content),
		"phrase": "IMPORT FLAGS", "reason": "moving to Switchyard"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/v1/admin/import", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/admin/import: %d %s", res.StatusCode, msg)
	}
}

// syncBuffer is a log destination safe for the concurrent evaluations'
// writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records written so far, without their time.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		delete(rec, "time")
		out = append(out, rec)
	}
	return out
}

// newSwitchyard is Switchyard's HTTP API over st in demo mode, with the
// tests' admin token.
func newSwitchyard(st store.Store) http.Handler {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return server.New(logger, control.New(logger, control.Config{}, st),
		server.Config{Auth: server.NewAuthenticator([]server.Token{{Operator: switchyard.Operator{Name: "admin", Role: switchyard.RoleAdmin}, Secret: adminToken}})})
}

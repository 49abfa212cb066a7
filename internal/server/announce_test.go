package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/rediscache"
)

// A revision committed by another replica reaches this server's evaluations
// as soon as its store announces it, not when the flag set's TTL runs out.
func TestAnnouncedRevisionIsServedAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	truth := memory.NewDemo()
	mr := miniredis.RunT(t)
	replica := func() *rediscache.Store {
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		c := rediscache.New(truth, rdb, rediscache.WithLogger(slog.New(slog.DiscardHandler)),
			rediscache.WithPollInterval(time.Hour))
		go c.Run(ctx)
		return c
	}
	other, mine := replica(), replica()
	clk := newClock()
	// The flag set would be served for an hour: only the announcement can
	// bring the change in time.
	handler := newHandler(slog.New(slog.DiscardHandler), testConfig{Config: control.Config{Mode: "demo", CacheTTL: time.Hour}}, mine, clk.now)

	heard := make(chan int64, 1)
	// Registered after the server's own listener, so it runs after it.
	mine.OnChange(func(rev *switchyard.Revision) {
		if rev.Number == 2 {
			heard <- rev.Number
		}
	})
	if _, _, err := other.Apply(ctx, store.Change{Attempt: store.Attempt{Actor: "other-replica", Reason: "test"},
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-heard:
	case <-time.After(10 * time.Second):
		t.Fatal("the other replica's commit was never announced to this one")
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/ofrep/v1/evaluate/flags/EXAM_MODE",
		strings.NewReader(`{"context":{}}`)))
	var got struct {
		Value    bool           `json:"value"`
		Metadata map[string]any `json:"metadata"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("evaluate: %d %s", rec.Code, rec.Body)
	}
	if !got.Value || got.Metadata["revision"] != float64(2) {
		t.Fatalf("EXAM_MODE = %v at revision %v, want true at 2 without waiting for the TTL", got.Value, got.Metadata["revision"])
	}
}

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// readEvent reads the next `revision` event of an SSE stream, skipping
// comments.
func readEvent(t *testing.T, r *bufio.Reader) switchyard.RevisionEvent {
	t.Helper()
	var event, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read the stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && data != "":
			if event != "revision" {
				t.Fatalf("event %q, want revision", event)
			}
			var ev switchyard.RevisionEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
			return ev
		}
	}
}

// openStream opens /v1/stream on a real server over h, reads its first
// event (the current revision, 1) and returns the reader. The client hangs
// up when the test ends, before the server closes: the handler must then
// return, or closing the server would wait for it forever.
func openStream(t *testing.T, h *harness) *bufio.Reader {
	t.Helper()
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get(headerRequestID) == "" {
		t.Fatalf("stream = %d %v", res.StatusCode, res.Header)
	}
	r := bufio.NewReader(res.Body)
	if ev := readEvent(t, r); ev.Revision != 1 || len(ev.Changed) != 0 {
		t.Fatalf("first event = %+v, want the current revision 1", ev)
	}
	return r
}

func TestStream(t *testing.T) {
	h := newHarness(t)
	r := openStream(t, h)

	changes := []struct {
		path string
		body map[string]any
		want []string
	}{
		{"/v1/admin/runtime/flags", map[string]any{"flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"},
			[]string{"EXAM_MODE"}},
		{"/v1/admin/runtime/override", map[string]any{"module": "mastery", "version": "v0", "phrase": "OVERRIDE MODULE mastery TO v0", "reason": "bug"},
			[]string{"module.mastery"}},
	}
	for i, c := range changes {
		h.admin(t, "POST", c.path, c.body)
		ev := readEvent(t, r)
		if ev.Revision != int64(i+2) || !slices.Equal(ev.Changed, c.want) || ev.HeartbeatMS != switchyard.StreamHeartbeat.Milliseconds() {
			t.Fatalf("after %s: event = %+v, want revision %d changing %v, advertising the default heartbeat", c.path, ev, i+2, c.want)
		}
	}
}

// TestStreamHeartbeat: an idle stream carries a heartbeat comment at the
// interval the server is configured with, which its events advertise.
func TestStreamHeartbeat(t *testing.T) {
	h := newHarness(t, func(c *testConfig) { c.Heartbeat = 5 * time.Millisecond })
	r := openStream(t, h)
	for _, want := range []string{": heartbeat\n", "\n"} {
		if line, err := r.ReadString('\n'); err != nil || line != want {
			t.Fatalf("line after the first event = %q, %v; want %q", line, err, want)
		}
	}
	h.admin(t, "POST", "/v1/admin/runtime/flags", map[string]any{"flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"})
	if ev := readEvent(t, r); ev.Revision != 2 || ev.HeartbeatMS != 5 {
		t.Fatalf("event = %+v, want revision 2 advertising a 5 ms heartbeat", ev)
	}
}

// TestStreamSeesOtherReplicas: a change made behind this server (by
// another replica) reaches open streams once the cache TTL has passed,
// though no evaluation request reloads the cache.
func TestStreamSeesOtherReplicas(t *testing.T) {
	h := newHarness(t, func(c *testConfig) { c.CacheTTL = time.Millisecond })
	r := openStream(t, h)
	h.changeBehindTheServer(t, switchyard.SetSystemFlag(switchyard.FreezeUpdates, true))
	h.clock.advance(time.Minute)
	if ev := readEvent(t, r); ev.Revision != 2 || !slices.Equal(ev.Changed, []string{"FREEZE_UPDATES"}) {
		t.Fatalf("event = %+v, want revision 2 changing FREEZE_UPDATES", ev)
	}
}

// TestStreamAfterARewoundHistory: when the store's history is rewound (a
// database restored from a backup taken at revision 1, then another
// revision 2 made), an open stream announces the new revision 2 though it
// announced a revision 2 already, with every flag changed, and the bundle
// the old revision 2's ETag named is no longer a match.
func TestStreamAfterARewoundHistory(t *testing.T) {
	c := newClock()
	hist := storetest.NewHistory(t, memory.NewDemo(memory.WithClock(c.now)))
	h := newStoreWith(t, c, hist)
	h.start(func(c *testConfig) { c.CacheTTL = time.Millisecond })
	r := openStream(t, h)
	lost := hist.Change(t, switchyard.SetSystemFlag(switchyard.FreezeUpdates, true))
	h.clock.advance(time.Minute)
	if ev := readEvent(t, r); ev.RevisionID != lost.ID || !slices.Equal(ev.Changed, []string{"FREEZE_UPDATES"}) {
		t.Fatalf("event = %+v, want revision 2 (%s) changing FREEZE_UPDATES", ev, lost.ID)
	}

	hist.Rewind(1)
	restored := hist.Change(t, switchyard.SetSystemFlag(switchyard.ExamMode, true))
	h.clock.advance(time.Minute)
	ev := readEvent(t, r)
	if ev.Revision != 2 || ev.RevisionID != restored.ID || !slices.Contains(ev.Changed, "FREEZE_UPDATES") ||
		!slices.Contains(ev.Changed, "EXAM_MODE") || !slices.Contains(ev.Changed, "module.mastery") {
		t.Fatalf("event = %+v, want revision 2 (%s) with every flag changed", ev, restored.ID)
	}
	res := h.do(t, call{method: "GET", path: "/v1/bundle?revision=2", header: map[string]string{"If-None-Match": `"` + lost.ID + `-demo"`}})
	if res.status != http.StatusOK || res.header.Get("ETag") != `"`+restored.ID+`-demo"` {
		t.Fatalf("bundle of revision 2 named by the lost one's ETag = %d %v, want 200 with the restored one's", res.status, res.header)
	}
}

// TestStreamEndsAtShutdown: http.Server.Shutdown ends open streams rather
// than waiting for their clients.
func TestStreamEndsAtShutdown(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewServer(h.handler)
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	readEvent(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a stream open: %v", err)
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("the stream is still open after shutdown")
	}
}

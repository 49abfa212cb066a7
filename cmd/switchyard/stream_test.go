package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// streamTestToken is the admin token of streamServer.
const streamTestToken = "stream-test-admin-token"

// streamServer is a demo server run by the *http.Server serve runs
// (newHTTPServer), each request bounded by timeout and streams sending a
// heartbeat every heartbeat (switchyard.StreamHeartbeat when 0). streams
// counts the GET /v1/stream requests.
type streamServer struct {
	url     string
	streams atomic.Int64
}

func newStreamServer(t *testing.T, timeout, heartbeat time.Duration) *streamServer {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	core := control.New(logger, control.Config{}, memory.NewDemo())
	tokens := []server.Token{{Role: switchyard.RoleAdmin, Secret: streamTestToken}}
	handler := server.New(logger, core, server.Config{Tokens: tokens, Heartbeat: heartbeat})
	ss := &streamServer{}
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/stream" {
			ss.streams.Add(1)
		}
		handler.ServeHTTP(w, r)
	}), timeout)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shut the server down: %v", err)
		}
	})
	ss.url = "http://" + ln.Addr().String()
	return ss
}

// setFreeze sets FREEZE_UPDATES through the admin API.
func (ss *streamServer) setFreeze(t *testing.T, on bool) {
	t.Helper()
	phrase := map[bool]string{true: "ENABLE FREEZE UPDATES", false: "DISABLE FREEZE UPDATES"}[on]
	body := fmt.Sprintf(`{"flag": "FREEZE_UPDATES", "value": %v, "phrase": %q, "reason": "stream test"}`, on, phrase)
	req, err := http.NewRequest(http.MethodPost, ss.url+"/v1/admin/runtime/flags", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+streamTestToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("set FREEZE_UPDATES %v: %d", on, res.StatusCode)
	}
}

// TestStreamOutlivesTheRequestTimeout: a stream stays open well past the
// server's read and write timeouts, carrying a heartbeat at the interval
// its events advertise, and then the next change.
func TestStreamOutlivesTheRequestTimeout(t *testing.T) {
	const timeout, heartbeat = 200 * time.Millisecond, 20 * time.Millisecond
	ss := newStreamServer(t, timeout, heartbeat)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ss.url+"/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	// next returns the stream's next line, failing when the stream ended.
	next := func() string {
		t.Helper()
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended %v after it opened, the request timeout being %v: %v",
				time.Since(opened).Round(time.Millisecond), timeout, err)
		}
		return strings.TrimRight(line, "\n")
	}
	// event returns the data of the stream's next event.
	event := func() switchyard.RevisionEvent {
		t.Helper()
		for {
			if data, ok := strings.CutPrefix(next(), "data: "); ok {
				var ev switchyard.RevisionEvent
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					t.Fatalf("event %q: %v", data, err)
				}
				return ev
			}
		}
	}
	if ev := event(); ev.Revision != 1 || ev.HeartbeatMS != heartbeat.Milliseconds() {
		t.Fatalf("first event %+v, want revision 1 advertising a %v heartbeat", ev, heartbeat)
	}
	late := 0
	for time.Since(opened) < 4*timeout {
		if next() == ": heartbeat" && time.Since(opened) > timeout {
			late++
		}
	}
	if late < 2 {
		t.Fatalf("%d heartbeats after the request timeout, want them every %v", late, heartbeat)
	}
	ss.setFreeze(t, true)
	if ev := event(); ev.Revision != 2 || !slices.Equal(ev.Changed, []string{"FREEZE_UPDATES"}) {
		t.Fatalf("event %+v, want revision 2 changing FREEZE_UPDATES", ev)
	}
}

// flipDuration is how long TestFlipsReachAProviderOverTheStream spreads
// its 100 flips over: 15 s by default, so CI runs it in that; the issue's
// measurement, 100 flips over 3 minutes with the stream cut every 20 s,
// is SWITCHYARD_FLIP_DURATION=3m.
func flipDuration(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("SWITCHYARD_FLIP_DURATION")
	if s == "" {
		return 15 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		t.Fatalf("SWITCHYARD_FLIP_DURATION=%q: want a duration of a second or more", s)
	}
	return d
}

// TestFlipsReachAProviderOverTheStream flips FREEZE_UPDATES 100 times,
// spread over flipDuration (many times the server's request timeout),
// while a proxy between the provider and the server cuts the stream nine
// times, evenly spaced, as a load balancer dropping connections would.
// The provider's poll interval is an hour: each flip comes over a stream,
// the one open or the one reopened after a cut, whose first event names
// the revision served. No flip may be missed: each is reported
// (PROVIDER_CONFIGURATION_CHANGED) and then evaluates to its new value.
// It logs how long each flip took from the admin call until the
// application was told, overall and apart from those a cut overlapped;
// speed is measured here, not asserted.
func TestFlipsReachAProviderOverTheStream(t *testing.T) {
	const timeout, flips, cuts = 200 * time.Millisecond, 100, 9
	total := flipDuration(t)
	ss := newStreamServer(t, timeout, 0)
	proxy, url := storetest.Proxied(t, ss.url)
	p, err := provider.New(url, provider.WithPollInterval(time.Hour), provider.WithGracePeriod(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, t.Name(), p); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	client := openfeature.NewClient(t.Name())
	type heard struct {
		revision int64
		at       time.Time
	}
	changed := make(chan heard, flips)
	onChange := func(d openfeature.EventDetails) {
		if n, ok := d.EventMetadata["revision"].(int64); ok {
			changed <- heard{n, time.Now()}
		}
	}
	client.AddHandler(openfeature.ProviderConfigChange, &onChange)

	// The cutter drops every connection through the proxy, the stream's
	// among them, nine times, evenly spaced, and lets the provider
	// reconnect at once.
	var cutMu sync.Mutex
	var cutAt []time.Time
	stopCuts := make(chan struct{})
	cutsDone := make(chan struct{})
	go func() {
		defer close(cutsDone)
		every := time.NewTicker(total / (cuts + 1))
		defer every.Stop()
		for range cuts {
			select {
			case <-stopCuts:
				return
			case <-every.C:
			}
			cutMu.Lock()
			cutAt = append(cutAt, time.Now())
			cutMu.Unlock()
			proxy.Cut()
			proxy.Restore()
		}
	}()
	endCuts := sync.OnceFunc(func() {
		close(stopCuts)
		<-cutsDone
	})
	defer endCuts()

	pace := time.NewTicker(total / flips)
	defer pace.Stop()
	type flip struct {
		start time.Time
		took  time.Duration
	}
	done := make([]flip, 0, flips)
	for i := range flips {
		<-pace.C
		on := i%2 == 0
		start := time.Now()
		ss.setFreeze(t, on)
		want := int64(i + 2)
		for h := (heard{}); h.revision < want; {
			select {
			case h = <-changed:
				if h.revision >= want {
					done = append(done, flip{start, h.at.Sub(start)})
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("flip %d (revision %d) missed: not heard after 10s; %d streams opened", i+1, want, ss.streams.Load())
			}
		}
		if v, _ := client.BooleanValue(context.Background(), "FREEZE_UPDATES", !on, openfeature.EvaluationContext{}); v != on {
			t.Fatalf("flip %d: FREEZE_UPDATES evaluates %v after the change event, want %v", i+1, v, on)
		}
	}
	endCuts()
	// A flip a cut overlapped: the cut came while it was under way, or
	// just before it, while the provider reconnected.
	const reconnect = 100 * time.Millisecond
	var all, clear []time.Duration
	for _, f := range done {
		all = append(all, f.took)
		overlapped := slices.ContainsFunc(cutAt, func(c time.Time) bool {
			return c.After(f.start.Add(-reconnect)) && c.Before(f.start.Add(f.took))
		})
		if !overlapped {
			clear = append(clear, f.took)
		}
	}
	pct := func(d []time.Duration, q float64) time.Duration {
		slices.Sort(d)
		return d[int(q*float64(len(d)-1))].Round(10 * time.Microsecond)
	}
	t.Logf("%d flips over %v, the stream cut %d times (%d streams opened), none missed: p50 %v, p99 %v, max %v; "+
		"the %d flips no cut overlapped: p99 %v, max %v",
		flips, total, len(cutAt), ss.streams.Load(), pct(all, 0.5), pct(all, 0.99), pct(all, 1),
		len(clear), pct(clear, 0.99), pct(clear, 1))
}

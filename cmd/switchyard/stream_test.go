package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
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
// counts the requests of either stream (GET /v1/stream, /ofrep/v1/events).
type streamServer struct {
	url     string
	streams atomic.Int64
}

func newStreamServer(t *testing.T, timeout, heartbeat time.Duration) *streamServer {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	core := control.New(logger, control.Config{}, memory.NewDemo())
	auth := server.NewAuthenticator([]server.Token{{Operator: switchyard.Operator{Name: "stream-admin", Role: switchyard.RoleAdmin}, Secret: streamTestToken}})
	handler := server.New(logger, core, server.Config{Auth: auth, Heartbeat: heartbeat})
	ss := &streamServer{}
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/stream" || r.URL.Path == "/ofrep/v1/events" {
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

// TestOFREPEventsOverTheRequestTimeout is what a browser's OFREP web
// provider does, with a real SSE client: it evaluates every flag, follows
// the event stream the answer advertises, and on each refetchEvaluation
// evaluates again with flagConfigEtag and If-None-Match. FREEZE_UPDATES
// flips 100 times over ten times the server's request timeout, and each
// flip is heard over one stream, with a new ETag and the new value. It
// logs how long each flip took from the admin call until the message
// arrived; speed is measured here, not asserted.
func TestOFREPEventsOverTheRequestTimeout(t *testing.T) {
	const timeout, heartbeat, flips = 200 * time.Millisecond, 50 * time.Millisecond, 100
	ss := newStreamServer(t, timeout, heartbeat)
	client := &http.Client{Timeout: 5 * time.Second}
	type bulkAnswer struct {
		EventStreams []struct {
			Type     string `json:"type"`
			Endpoint struct {
				RequestURI string `json:"requestUri"`
			} `json:"endpoint"`
		} `json:"eventStreams"`
		Flags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"flags"`
	}
	// bulk evaluates every flag, as the web provider does, and returns
	// the answer (none on 304), its ETag and FREEZE_UPDATES.
	bulk := func(query, etag string) (bulkAnswer, string, any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, ss.url+"/ofrep/v1/evaluate/flags"+query, strings.NewReader(`{"context":{"targetingKey":"u"}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var a bulkAnswer
		if res.StatusCode == http.StatusNotModified {
			return a, res.Header.Get("ETag"), nil
		}
		if err := json.NewDecoder(res.Body).Decode(&a); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("bulk evaluation: %d %v", res.StatusCode, err)
		}
		var freeze any
		for _, f := range a.Flags {
			if f.Key == switchyard.FreezeUpdates {
				freeze = f.Value
			}
		}
		return a, res.Header.Get("ETag"), freeze
	}
	first, etag, _ := bulk("", "")
	if len(first.EventStreams) != 1 || first.EventStreams[0].Type != "sse" {
		t.Fatalf("eventStreams = %+v, want one SSE stream", first.EventStreams)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ss.url+first.EventStreams[0].Endpoint.RequestURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	type message struct {
		at   time.Time
		etag string
	}
	messages := make(chan message, flips+1)
	go func() {
		defer close(messages)
		r := bufio.NewReader(res.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			var data struct{ Type, ETag string }
			if d, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok && json.Unmarshal([]byte(d), &data) == nil && data.Type == "refetchEvaluation" {
				messages <- message{at: time.Now(), etag: data.ETag}
			}
		}
	}()
	next := func(what string) message {
		t.Helper()
		select {
		case m, ok := <-messages:
			if !ok {
				t.Fatalf("the event stream ended before %s", what)
			}
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("no refetchEvaluation for %s after 10s", what)
		}
		panic("unreachable")
	}
	if m := next("the connection"); m.etag != `"1-demo"` {
		t.Fatalf("first message names %s, want revision 1", m.etag)
	}

	pace := time.NewTicker(10 * timeout / flips)
	defer pace.Stop()
	took := make([]time.Duration, 0, flips)
	for i := range flips {
		<-pace.C
		on := i%2 == 0
		start := time.Now()
		ss.setFreeze(t, on)
		m := next(fmt.Sprintf("flip %d", i+1))
		took = append(took, m.at.Sub(start))
		if want := fmt.Sprintf(`"%d-demo"`, i+2); m.etag != want {
			t.Fatalf("flip %d: message names %s, want %s", i+1, m.etag, want)
		}
		_, newETag, freeze := bulk("?flagConfigEtag="+url.QueryEscape(m.etag), etag)
		if newETag == etag || freeze != on {
			t.Fatalf("flip %d: the refetch answered ETag %s (before %s) and FREEZE_UPDATES %v, want a new ETag and %v", i+1, newETag, etag, freeze, on)
		}
		etag = newETag
	}
	if n := ss.streams.Load(); n != 1 {
		t.Fatalf("%d streams opened, want the one kept open throughout", n)
	}
	slices.Sort(took)
	pct := func(q float64) time.Duration { return took[int(q*float64(len(took)-1))].Round(10 * time.Microsecond) }
	t.Logf("%d flips over %v, each heard as refetchEvaluation over one OFREP event stream: p50 %v, p99 %v, max %v",
		flips, 10*timeout, pct(0.50), pct(0.99), took[len(took)-1].Round(10*time.Microsecond))
}

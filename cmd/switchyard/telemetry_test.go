package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/store/storetest"
)

// scrape returns the metrics at url, or fails the test.
func scrape(t *testing.T, url string) string {
	t.Helper()
	code, body := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d", url, code)
	}
	return body
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metric returns the value of the first series of name whose labels
// include every name="value" pair of labels, or -1 when there is none.
func metric(scrape, name string, labels ...string) float64 {
	for line := range strings.SplitSeq(scrape, "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && strings.Contains(series, labels[i]+`="`+labels[i+1]+`"`)
		}
		if v, err := strconv.ParseFloat(value, 64); match && err == nil {
			return v
		}
	}
	return -1
}

// TestMetricsAddress: by default /metrics is on the main address and the
// profiler nowhere; --metrics-addr moves /metrics to its own address, where
// --pprof adds the profiler, which the main address never serves.
func TestMetricsAddress(t *testing.T) {
	plain := startServe(t, nil)
	defer plain.stop()
	if got := metric(scrape(t, plain.url+"/metrics"), "switchyard_system_mode", "mode", "demo"); got != 1 {
		t.Errorf("main address: switchyard_system_mode{demo} = %v, want 1", got)
	}
	if code, _ := get(t, plain.url+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("main address: GET /debug/pprof/ = %d, want 404", code)
	}

	for _, pprof := range []bool{false, true} {
		args := []string{"--metrics-addr", "127.0.0.1:0"}
		if pprof {
			args = append(args, "--pprof")
		}
		s := startServe(t, nil, args...)
		if s.metrics == "" {
			t.Fatal("serve did not say where it serves metrics")
		}
		if got := metric(scrape(t, s.metrics), "switchyard_revision", "mode", "demo"); got != 1 {
			t.Errorf("metrics address: switchyard_revision{demo} = %v, want 1", got)
		}
		base := strings.TrimSuffix(s.metrics, "/metrics")
		want := http.StatusNotFound
		if pprof {
			want = http.StatusOK
		}
		if code, _ := get(t, base+"/debug/pprof/"); code != want {
			t.Errorf("--pprof=%v: GET /debug/pprof/ on the metrics address = %d, want %d", pprof, code, want)
		}
		for _, path := range []string{"/metrics", "/debug/pprof/"} {
			if code, _ := get(t, s.url+path); code != http.StatusNotFound {
				t.Errorf("--pprof=%v: GET %s on the main address = %d, want 404", pprof, path, code)
			}
		}
		_ = s.stop()
	}
}

// stoppable forwards connections to a server until stop, after which its
// port refuses them, as a stopped server's does (storetest.Proxy accepts
// and closes them, which go-redis takes for a dropped connection).
type stoppable struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newStoppable(t *testing.T, target string) *stoppable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stoppable{ln: ln}
	t.Cleanup(s.stop)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", target, 2*time.Second)
			if err != nil {
				in.Close()
				continue
			}
			s.mu.Lock()
			s.conns = append(s.conns, in, out)
			s.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return s
}

// stop closes the port and every connection through it.
func (s *stoppable) stop() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// TestJSONLogsWhileRedisIsDown: with --log-format json every line of the
// log is one JSON object while Redis is down, go-redis' own complaints
// included, and the replica still serves and changes.
func TestJSONLogsWhileRedisIsDown(t *testing.T) {
	env := productionEnv(t)
	u, err := url.Parse(env["SWITCHYARD_REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	redis := newStoppable(t, u.Host)
	u.Host = redis.ln.Addr().String()
	env["SWITCHYARD_REDIS_URL"] = u.String()
	logs := &storetest.LogBuffer{}
	s := startServeLogging(t, env, logs, "--log-format", "json", "--access-log")
	// Stopped before the log is read, and on any failure before that.
	stop := sync.OnceValue(s.stop)
	defer stop()
	s.token = testAdminSecret
	redis.stop()
	if code := setExamMode(t, s, true); code != http.StatusOK {
		t.Fatalf("exam mode on with Redis down: %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), `"component":"redis"`) {
		if code, _ := post(t, s, "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{}}`); code != http.StatusOK {
			t.Fatalf("evaluate with Redis down: %d", code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("go-redis logged nothing through the service log in 30s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	for i, line := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("log line %d is not a JSON object: %q", i+1, line)
		}
	}
	for _, want := range []string{`"msg":"redis is unreachable`, `"msg":"runtime changed"`, `"msg":"request"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log has no %s line", want)
		}
	}
}

// TestMetricsAcrossReplicas: a change made through one replica shows in
// the other's metrics: the revision it serves, the announcement that
// brought it and how long it took, its store calls and pools; the first
// counts the change as applied.
func TestMetricsAcrossReplicas(t *testing.T) {
	env := productionEnv(t)
	env["SWITCHYARD_CACHE_TTL"], env["SWITCHYARD_REDIS_TTL"] = "10m", "10m"
	a := startServe(t, env)
	defer a.stop()
	b := startServe(t, env, "--migrate=false")
	defer b.stop()
	a.token, b.token = testAdminSecret, testAdminSecret
	if code := setExamMode(t, a, true); code != http.StatusOK {
		t.Fatalf("exam mode on through replica A: %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	var m string
	for {
		m = scrape(t, b.url+"/metrics")
		if metric(m, "switchyard_revision", "mode", "production") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica B's metrics still show revision %v 10s after the change", metric(m, "switchyard_revision", "mode", "production"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := metric(m, "switchyard_revision_propagation_seconds_count"); got != 1 {
		t.Errorf("replica B: propagations = %v, want 1", got)
	}
	if got := metric(m, "switchyard_system_flag", "flag", "EXAM_MODE"); got != 1 {
		t.Errorf("replica B: EXAM_MODE = %v, want 1", got)
	}
	announced := 0.0
	for _, channel := range []string{"notify", "pubsub", "poll"} {
		announced += max(metric(m, "switchyard_announcements_total", "channel", channel), 0)
	}
	if announced < 1 {
		t.Errorf("replica B counted no announcement:\n%s", m)
	}
	for _, tt := range []struct {
		name   string
		labels []string
	}{
		{"switchyard_store_calls_total", []string{"store", "postgres", "operation", "current", "outcome", "ok"}},
		{"switchyard_store_calls_total", []string{"store", "redis", "operation", "get"}},
		{"switchyard_postgres_pool_max_connections", nil},
		{"switchyard_redis_pool_connections", []string{"state", "total"}},
	} {
		if got := metric(m, tt.name, tt.labels...); got < 0 {
			t.Errorf("replica B has no %s%v", tt.name, tt.labels)
		}
	}
	if got := metric(scrape(t, a.url+"/metrics"), "switchyard_changes_total", "action", "set_flag", "outcome", "applied"); got != 1 {
		t.Errorf("replica A: applied changes = %v, want 1", got)
	}
}

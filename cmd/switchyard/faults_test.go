package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cutter is a TCP proxy between the service and one store, so a test can
// cut the connection and restore it the way a network partition would.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	// resume is open while the link hangs, as a SIGSTOPped server's
	// does: connections are accepted and kept, and nothing passes.
	resume chan struct{}
	// delay holds every chunk that passes, in both directions.
	delay time.Duration
}

func newCutter(t testing.TB, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go c.serve()
	t.Cleanup(func() { ln.Close(); c.cut() })
	return c
}

func (c *cutter) addr() string { return c.ln.Addr().String() }

func (c *cutter) serve() {
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		go c.pipe(in)
	}
}

func (c *cutter) pipe(in net.Conn) {
	c.mu.Lock()
	down := c.down
	c.mu.Unlock()
	if down {
		in.Close()
		return
	}
	out, err := net.DialTimeout("tcp", c.target, 2*time.Second)
	if err != nil {
		in.Close()
		return
	}
	if !c.track(in, out) {
		return
	}
	go func() { c.relay(out, in); out.Close() }()
	c.relay(in, out)
	in.Close()
}

// relay copies src to dst, holding each chunk while the link hangs and
// for the delay.
func (c *cutter) relay(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			c.mu.Lock()
			resume, delay := c.resume, c.delay
			c.mu.Unlock()
			if resume != nil {
				<-resume
			}
			time.Sleep(delay)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hang stops everything passing, without closing a connection, until
// restore.
func (c *cutter) hang() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resume == nil {
		c.resume = make(chan struct{})
	}
}

// slow delays everything passing by d until restore.
func (c *cutter) slow(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delay = d
}

// track registers both ends, or closes them when a cut came first.
func (c *cutter) track(conns ...net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		for _, conn := range conns {
			conn.Close()
		}
		return false
	}
	for _, conn := range conns {
		c.conns[conn] = struct{}{}
	}
	return true
}

// cut drops every open connection and refuses new ones.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = true
	if c.resume != nil {
		close(c.resume)
		c.resume = nil
	}
	for conn := range c.conns {
		conn.Close()
	}
	clear(c.conns)
}

// restore ends a cut, a hang or a delay.
func (c *cutter) restore() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = false
	c.delay = 0
	if c.resume != nil {
		close(c.resume)
		c.resume = nil
	}
}

// proxied puts a cutter in front of the service at raw (a postgres:// or
// redis:// URL) and returns it with the URL that goes through it.
func proxied(t testing.TB, raw string) (*cutter, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := newCutter(t, u.Host)
	u.Host = c.addr()
	return c, u.String()
}

// The values the load accepts: while a change is in flight either is right.
const (
	wantOff int32 = iota
	wantOn
	wantEither
)

// load evaluates EXAM_MODE over OFREP from a few goroutines until stopped,
// counting failures (anything but 200) and values other than want. Each
// goroutine takes turns: a plain evaluation, one for a session pinned
// before the load with exam mode on (when the test pinned any), and one
// for a session seen for the first time, which must get the live value
// and keep it; those first seen while recording are kept, to be checked
// again once the runtime has changed.
type load struct {
	url           string
	want          atomic.Int32
	evaluations   atomic.Int64
	failed, wrong atomic.Int64
	firstProblem  atomic.Value
	stop          chan struct{}
	wg            sync.WaitGroup

	// prefix names the sessions this load sees first, apart from every
	// other load's.
	prefix    string
	recording atomic.Bool
	mu        sync.Mutex
	recorded  []pinnedSession
}

// pinnedSession is a session first seen while the load recorded, and the
// value it was pinned with.
type pinnedSession struct {
	id   string
	want int32
}

// pinnedBefore are sessions a test may pin, with exam mode on, before
// starting the load: one a goroutine.
var pinnedBefore = []string{"before-0", "before-1", "before-2", "before-3"}

// startLoad starts the load; pinned says the test pinned pinnedBefore.
func startLoad(url string, want int32, pinned bool) *load {
	l := &load{url: url, stop: make(chan struct{}), prefix: fmt.Sprintf("%p", &url)}
	l.want.Store(want)
	client := &http.Client{Timeout: 5 * time.Second}
	for g := range 4 {
		l.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				switch n % 3 {
				case 0:
					l.once(client, "", l.want.Load())
				case 1:
					if pinned {
						l.once(client, pinnedBefore[g], wantOn)
					}
				case 2:
					id := fmt.Sprintf("new-%s-%d-%d", l.prefix, g, n)
					want := l.want.Load()
					if l.once(client, id, want) && want != wantEither && l.recording.Load() {
						l.mu.Lock()
						if len(l.recorded) < 200 {
							l.recorded = append(l.recorded, pinnedSession{id, want})
						}
						l.mu.Unlock()
					}
				}
			}
		})
	}
	return l
}

// once evaluates EXAM_MODE, for session (none when empty), and reports
// whether the answer was right.
func (l *load) once(client *http.Client, session string, want int32) bool {
	body := `{"context":{}}`
	if session != "" {
		body = `{"context":{"sessionId":"` + session + `"}}`
	}
	resp, err := client.Post(l.url+"/ofrep/v1/evaluate/flags/EXAM_MODE", "application/json", strings.NewReader(body))
	l.evaluations.Add(1)
	if err != nil {
		l.problem(&l.failed, err.Error())
		return false
	}
	defer resp.Body.Close()
	var r struct {
		Value    *bool          `json:"value"`
		Reason   string         `json:"reason"`
		Metadata map[string]any `json:"metadata"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil || r.Value == nil {
		l.problem(&l.failed, fmt.Sprintf("session %q: status %d", session, resp.StatusCode))
		return false
	}
	if want != wantEither && *r.Value != (want == wantOn) {
		l.problem(&l.wrong, fmt.Sprintf("session %q: EXAM_MODE %v (%s %v), want %v", session, *r.Value, r.Reason, r.Metadata, want == wantOn))
		return false
	}
	return true
}

func (l *load) problem(counter *atomic.Int64, what string) {
	counter.Add(1)
	l.firstProblem.CompareAndSwap(nil, time.Now().Format("15:04:05.000")+" "+what)
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

// Under a steady evaluation load, plain and for sessions old and new,
// cutting Postgres, then Redis, then both fails no evaluation and serves
// no wrong value; writes meanwhile answer 503; once both are back the
// service recovers by itself and serves a new change, which no session
// pinned before it sees, those first seen during the faults included.
func TestStoreFaultsUnderLoad(t *testing.T) {
	env := productionEnv(t)
	pg, pgURL := proxied(t, env["SWITCHYARD_DATABASE_URL"])
	redis, redisURL := proxied(t, env["SWITCHYARD_REDIS_URL"])
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
	for _, id := range pinnedBefore {
		if code, body := post(t, s, "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{"sessionId":"`+id+`"}}`); code != http.StatusOK || body["value"] != true {
			t.Fatalf("pin %s = %d %v", id, code, body)
		}
	}
	l := startLoad(s.url, wantOn, true)
	l.waitFor(t, 200)

	// Sessions seen for the first time during the faults are checked
	// again after the change that follows them.
	l.recording.Store(true)
	pg.cut()
	until(t, s, "degraded with Postgres cut", func(code int, _ string) bool { return code == http.StatusServiceUnavailable })
	l.waitFor(t, 500)
	if code := setExamMode(t, s, false); code != http.StatusServiceUnavailable {
		t.Fatalf("a write with Postgres cut answered %d, want 503", code)
	}

	redis.cut()
	l.waitFor(t, 500)
	pg.restore()
	until(t, s, "degraded by Redis alone", func(code int, body string) bool {
		return code == http.StatusOK && strings.Contains(body, `"degraded"`)
	})
	l.waitFor(t, 500)
	pg.cut()
	l.waitFor(t, 500)

	pg.restore()
	redis.restore()
	l.recording.Store(false)
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
	// Every session first seen during the faults kept the value it was
	// pinned with, exam mode on, through the change.
	client := &http.Client{Timeout: 5 * time.Second}
	for _, p := range l.recorded {
		l.once(client, p.id, p.want)
	}
	if len(l.recorded) == 0 {
		t.Fatal("no session was first seen during the faults")
	}
	if l.failed.Load() != 0 || l.wrong.Load() != 0 {
		t.Fatalf("%d evaluations: %d failed, %d wrong; first: %v", l.evaluations.Load(), l.failed.Load(), l.wrong.Load(), l.firstProblem.Load())
	}
	t.Logf("%d evaluations through the faults (%d sessions first seen during them), none failed or wrong",
		l.evaluations.Load(), len(l.recorded))
}

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

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

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
	want          expectation
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
					l.live(client, "")
				case 1:
					if pinned {
						l.once(client, pinnedBefore[g], wantOn)
					}
				case 2:
					id := fmt.Sprintf("new-%s-%d-%d", l.prefix, g, n)
					if want, ok := l.live(client, id); ok && want != wantEither && l.recording.Load() {
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

// expectation is the value a load accepts, with a generation that moves
// with every change of it: a request in flight while it changed is judged
// by neither side of the change.
type expectation struct{ v atomic.Int64 }

// Store makes want the value accepted from now on.
func (e *expectation) Store(want int32) {
	for {
		old := e.v.Load()
		if e.v.CompareAndSwap(old, (old>>8+1)<<8|int64(want)) {
			return
		}
	}
}

// Load returns the value accepted now.
func (e *expectation) Load() int32 { return int32(e.v.Load() & 0xff) }

// live evaluates EXAM_MODE for session (none, or one seen for the first
// time), which must get the live value: what the load wants, unless that
// changed while the request was in flight. It returns the value the
// answer was held to and whether it was right.
func (l *load) live(client *http.Client, session string) (int32, bool) {
	before := l.want.v.Load()
	value, ok := l.evaluate(client, session)
	if !ok {
		return 0, false
	}
	want := int32(before & 0xff)
	if l.want.v.Load() != before {
		want = wantEither
	}
	return want, l.judge(session, value, want)
}

// once evaluates EXAM_MODE, for session (none when empty), and reports
// whether the answer was right.
func (l *load) once(client *http.Client, session string, want int32) bool {
	value, ok := l.evaluate(client, session)
	return ok && l.judge(session, value, want)
}

// answer is what an evaluation of EXAM_MODE answered.
type answer struct {
	Value    *bool          `json:"value"`
	Reason   string         `json:"reason"`
	Metadata map[string]any `json:"metadata"`
}

// evaluate evaluates EXAM_MODE, for session (none when empty), counting
// a failure when the answer is not a 200 with a value.
func (l *load) evaluate(client *http.Client, session string) (answer, bool) {
	body := `{"context":{}}`
	if session != "" {
		body = `{"context":{"sessionId":"` + session + `"}}`
	}
	resp, err := client.Post(l.url+"/ofrep/v1/evaluate/flags/EXAM_MODE", "application/json", strings.NewReader(body))
	l.evaluations.Add(1)
	if err != nil {
		l.problem(&l.failed, err.Error())
		return answer{}, false
	}
	defer resp.Body.Close()
	var r answer
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil || r.Value == nil {
		l.problem(&l.failed, fmt.Sprintf("session %q: status %d", session, resp.StatusCode))
		return answer{}, false
	}
	return r, true
}

// judge counts r as wrong unless it is the value want accepts.
func (l *load) judge(session string, r answer, want int32) bool {
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
	pg, pgURL := storetest.Proxied(t, env["SWITCHYARD_DATABASE_URL"])
	redis, redisURL := storetest.Proxied(t, env["SWITCHYARD_REDIS_URL"])
	env["SWITCHYARD_DATABASE_URL"], env["SWITCHYARD_REDIS_URL"] = pgURL, redisURL
	env["SWITCHYARD_TOKENS"] = "admin:" + testAdminSecret
	// Short TTLs, so the outage is met by many reloads.
	env["SWITCHYARD_CACHE_TTL"], env["SWITCHYARD_REDIS_TTL"] = "50ms", "100ms"
	env["SWITCHYARD_LOG_LEVEL"] = "error"
	s := startServe(t, env)
	defer s.stop()
	s.token = testAdminSecret
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

// keyedWrite is one answer to a change sent with an Idempotency-Key.
type keyedWrite struct {
	flag           string
	on             bool
	key, requestID string
	status         int
	code, message  string
	retryAfter     string
	auditSeq       int64
	revision       int64
}

// sendKeyed turns the system flag on or off with key, as request
// requestID, and returns the answer.
func sendKeyed(p *process, flag, key, requestID string, on bool) (keyedWrite, error) {
	phrase := map[bool]string{true: "ENABLE ", false: "DISABLE "}[on] + strings.ReplaceAll(flag, "_", " ")
	req, err := http.NewRequest(http.MethodPost, p.url+"/v1/admin/runtime/flags",
		strings.NewReader(fmt.Sprintf(`{"flag": %q, "value": %v, "phrase": %q, "reason": "a keyed write under faults"}`, flag, on, phrase)))
	if err != nil {
		return keyedWrite{}, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("X-Request-Id", requestID)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return keyedWrite{}, fmt.Errorf("request %s: %w", requestID, err)
	}
	defer resp.Body.Close()
	var body struct {
		AuditSeq int64 `json:"audit_seq"`
		Status   struct {
			Revision int64 `json:"revision"`
		} `json:"status"`
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return keyedWrite{}, fmt.Errorf("request %s: %d: %w", requestID, resp.StatusCode, err)
	}
	return keyedWrite{flag: flag, on: on, key: key, requestID: requestID, status: resp.StatusCode, code: body.Error.Code, message: body.Error.Message,
		retryAfter: resp.Header.Get("Retry-After"), auditSeq: body.AuditSeq, revision: body.Status.Revision}, nil
}

// loggedRevisions returns the revisions the JSON service log says were
// changed ("runtime changed").
func loggedRevisions(t *testing.T, logs string) map[int64]bool {
	t.Helper()
	out := map[int64]bool{}
	for line := range strings.Lines(logs) {
		var rec struct {
			Msg      string `json:"msg"`
			Revision int64  `json:"revision"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "runtime changed" {
			out[rec.Revision] = true
		}
	}
	return out
}

// slowLink is the one-way delay of the database link in
// TestWriteOutcomesOverASlowLink. A change on a connection in use a moment
// ago takes two round trips (the lock, the write), so its COMMIT reaches
// the database after three delays, before the write's 5-second deadline,
// and its answer would come back after four, past it. (A connection idle
// for over a second is pinged first, and a new one needs several round
// trips to start: their changes time out before the COMMIT is sent.)
const slowLink = 1400 * time.Millisecond

// Over a database link so slow that commits land just before the write
// deadline and their answers just after it, every change answered 200 is
// applied exactly once, every change answered 503 is not applied, and a
// retry with the same Idempotency-Key answers the one outcome: the audit
// log, the current revision and the service log all agree.
func TestWriteOutcomesOverASlowLink(t *testing.T) {
	env := productionEnv(t)
	pg, pgURL := storetest.Proxied(t, env["SWITCHYARD_DATABASE_URL"])
	env["SWITCHYARD_DATABASE_URL"] = pgURL
	env["SWITCHYARD_TOKENS"] = "admin:" + testAdminSecret
	env["SWITCHYARD_LOG_FORMAT"] = "json"
	var logs storetest.LogBuffer
	s := startServeLogging(t, env, &logs)
	defer s.stop()
	s.token = testAdminSecret
	// Changes from a few writers at once leave several pooled connections
	// with the change's statements prepared, as on a server that has run
	// for a while: over the slow link a change on such a connection gets
	// its COMMIT out before the deadline.
	var warm sync.WaitGroup
	for w := range 3 {
		warm.Go(func() {
			for i := range 3 {
				if a, err := sendKeyed(s, switchyard.ExamMode, fmt.Sprintf("warm-%d-%d", w, i), fmt.Sprintf("warm-%d-%d", w, i), i%2 == 0); err != nil || a.status != http.StatusOK {
					t.Errorf("warming up: %+v, %v", a, err)
				}
			}
		})
	}
	warm.Wait()
	var base status
	getJSON(t, s, "/v1/admin/runtime/status", &base)

	pg.Slow(slowLink)
	const writers, each, tries = 1, 3, 2
	answers := make(chan keyedWrite, writers*each*(tries+1))
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("slow-%d-%d", w, i)
				for try := range tries {
					a, err := sendKeyed(s, switchyard.ExamMode, key, fmt.Sprintf("%s-try-%d", key, try), (w+i)%2 == 0)
					if err != nil {
						t.Error(err)
						return
					}
					answers <- a
					if a.status == http.StatusOK {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	pg.Slow(0)
	// Once more over the restored link: every key now has its outcome.
	for w := range writers {
		for i := range each {
			key := fmt.Sprintf("slow-%d-%d", w, i)
			a, err := sendKeyed(s, switchyard.ExamMode, key, key+"-restored", (w+i)%2 == 0)
			if err != nil {
				t.Fatal(err)
			}
			if a.status != http.StatusOK {
				t.Fatalf("%s over the restored link: %d %s, want 200", key, a.status, a.code)
			}
			answers <- a
		}
	}
	close(answers)

	var page struct {
		Entries []struct {
			Seq       int64  `json:"seq"`
			RequestID string `json:"request_id"`
			Outcome   string `json:"outcome"`
			Revision  int64  `json:"revision"`
		} `json:"entries"`
	}
	getJSON(t, s, "/v1/admin/audit?limit=1000", &page)
	applied := map[string][]int64{} // request ID -> seqs of applied rows
	revisionOf := map[int64]int64{}
	for _, e := range page.Entries {
		if e.Outcome == "applied" {
			applied[e.RequestID] = append(applied[e.RequestID], e.Seq)
			revisionOf[e.Seq] = e.Revision
		}
	}
	byKey := map[string][]keyedWrite{}
	for a := range answers {
		byKey[a.key] = append(byKey[a.key], a)
	}
	counts := map[int]int{}
	for key, as := range byKey {
		var seqs []int64
		for _, a := range as {
			seqs = append(seqs, applied[a.requestID]...)
		}
		if len(seqs) != 1 {
			t.Errorf("key %s: applied by %d audit rows %v, want exactly 1", key, len(seqs), seqs)
		}
		for _, a := range as {
			counts[a.status]++
			switch a.status {
			case http.StatusOK:
				if len(seqs) == 1 && (a.auditSeq != seqs[0] || a.revision != revisionOf[seqs[0]]) {
					t.Errorf("%s answered audit_seq %d, revision %d; the audit log applied it as seq %d, revision %d",
						a.requestID, a.auditSeq, a.revision, seqs[0], revisionOf[seqs[0]])
				}
			case http.StatusServiceUnavailable:
				if len(applied[a.requestID]) != 0 {
					t.Errorf("%s answered 503 but the audit log applied it as seq %v", a.requestID, applied[a.requestID])
				}
				if a.retryAfter == "" {
					t.Errorf("%s answered 503 without Retry-After: %s", a.requestID, a.message)
				}
			case http.StatusGatewayTimeout:
				if a.code != "OUTCOME_UNKNOWN" {
					t.Errorf("%s answered 504 %s, want OUTCOME_UNKNOWN", a.requestID, a.code)
				}
			default:
				t.Errorf("%s answered %d %s", a.requestID, a.status, a.code)
			}
		}
	}
	var cur status
	getJSON(t, s, "/v1/admin/runtime/status", &cur)
	if want := base.Revision + int64(writers*each); cur.Revision != want {
		t.Errorf("current revision %d, want %d: one per key", cur.Revision, want)
	}
	logged := loggedRevisions(t, logs.String())
	for seq, rev := range revisionOf {
		if !logged[rev] {
			t.Errorf("revision %d (audit seq %d) is not in the service log", rev, seq)
		}
	}
	var v verification
	getJSON(t, s, "/v1/admin/audit/verify", &v)
	if !v.OK {
		t.Errorf("audit chain: %+v", v)
	}
	t.Logf("answers by status: %v", counts)
}

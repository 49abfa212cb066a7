package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// replica is one production `switchyard serve` behind its own links to
// the shared Postgres and Redis, so a fault can hit one replica or all.
type replica struct {
	*process
	pg, redis *storetest.Proxy
	load      *load
}

// startReplicas starts n production replicas over one database and one
// Redis, each with its own state directory and its own faultable links.
func startReplicas(t *testing.T, n int) []*replica {
	t.Helper()
	base := productionEnv(t)
	base["SWITCHYARD_TOKENS"] = "admin:" + testAdminSecret
	// Short TTLs, so each fault is met by many reloads.
	base["SWITCHYARD_CACHE_TTL"], base["SWITCHYARD_REDIS_TTL"] = "50ms", "100ms"
	base["SWITCHYARD_LOG_LEVEL"] = "error"
	var rs []*replica
	for i := range n {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		r := &replica{}
		r.pg, env["SWITCHYARD_DATABASE_URL"] = storetest.Proxied(t, base["SWITCHYARD_DATABASE_URL"])
		r.redis, env["SWITCHYARD_REDIS_URL"] = storetest.Proxied(t, base["SWITCHYARD_REDIS_URL"])
		if i > 0 {
			env["SWITCHYARD_STATE_DIR"] = t.TempDir()
		}
		r.process = startServe(t, env)
		r.token = testAdminSecret
		t.Cleanup(func() { _ = r.stop() })
		rs = append(rs, r)
	}
	return rs
}

// each runs fn for every replica.
func each(rs []*replica, fn func(*replica)) {
	for _, r := range rs {
		fn(r)
	}
}

// serves polls r until an evaluation of EXAM_MODE gives on, bounded by a
// deadline: a change reaches other replicas asynchronously.
func serves(t *testing.T, r *replica, on bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := post(t, r.process, "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{}}`)
		if code == http.StatusOK && body["value"] == on {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never served EXAM_MODE %v: last %d %v", r.url, on, code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFaultsAcrossReplicas: three production replicas under a steady
// evaluation load each (plain, sessions pinned before, sessions first
// seen), through a hung database, a database cut off from one replica
// while another changes the runtime, a slow database, a cut Redis and
// both stores cut. No evaluation fails and none is wrong; the replica cut
// off from Postgres keeps current through Redis and says it is degraded;
// sessions first seen during the faults keep their pins, on every
// replica, through the change that follows. A change sent under each fault
// with an Idempotency-Key, and each of a steady stream of them sent through
// the replicas in turn from the first fault to the last, is applied
// exactly once once sent again: never when it was answered 503, under its
// own request when answered 200.
func TestFaultsAcrossReplicas(t *testing.T) {
	rs := startReplicas(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	phase := func(what string) { t.Logf("%s %s", time.Now().Format("15:04:05.000"), what) }
	if code := setExamMode(t, a.process, true); code != http.StatusOK {
		t.Fatalf("exam mode on: %d", code)
	}
	each(rs, func(r *replica) { serves(t, r, true) })
	for _, id := range pinnedBefore {
		if code, body := post(t, a.process, "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{"sessionId":"`+id+`"}}`); code != http.StatusOK || body["value"] != true {
			t.Fatalf("pin %s = %d %v", id, code, body)
		}
	}
	each(rs, func(r *replica) { r.load = startLoad(r.url, wantOn, true) })
	waitAll := func(n int64) { each(rs, func(r *replica) { r.load.waitFor(t, n) }) }
	waitAll(100)
	each(rs, func(r *replica) { r.load.recording.Store(true) })

	// A change is also sent under each fault, with its own Idempotency-Key.
	// Each sets EXAM_MODE to the value it has, so the loads' expectations
	// hold whether it applies or not; its outcome is checked at the end.
	// Meanwhile a steady writer toggles FREEZE_UPDATES, which the loads do
	// not check, through each replica in turn.
	var writes []keyedWrite
	write := func(r *replica, key string, on bool) {
		a, err := sendKeyed(r.process, switchyard.ExamMode, key, key+"-first", on)
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, a)
	}
	steady := startWriter(rs)

	phase("hung database")
	// A hung database, as a SIGSTOPped one: connections open, no answer.
	each(rs, func(r *replica) { r.pg.Hang() })
	write(a, "during-hang", true)
	waitAll(300)
	each(rs, func(r *replica) { r.pg.Restore() })

	phase("postgres cut off from a")
	// Postgres cut off from one replica: another changes the runtime, and
	// the cut replica serves the change through Redis.
	a.pg.Cut()
	waitAll(100)
	each(rs, func(r *replica) { r.load.want.Store(wantEither) })
	if code := setExamMode(t, b.process, false); code != http.StatusOK {
		t.Fatalf("exam mode off through a replica that reaches Postgres: %d", code)
	}
	each(rs, func(r *replica) { serves(t, r, false) })
	each(rs, func(r *replica) { r.load.want.Store(wantOff) })
	until(t, a.process, "degraded with Postgres cut off", func(code int, body string) bool {
		return code == http.StatusOK && strings.Contains(body, `"degraded"`) && strings.Contains(body, "session")
	})
	write(a, "postgres-cut-off", false)
	waitAll(300)
	a.pg.Restore()

	phase("slow database")
	// A slow database, then Redis cut, then both.
	each(rs, func(r *replica) { r.pg.Slow(200 * time.Millisecond) })
	write(b, "slow-database", false)
	waitAll(100)
	each(rs, func(r *replica) { r.pg.Slow(0); r.redis.Cut() })
	waitAll(300)
	each(rs, func(r *replica) { r.pg.Cut() })
	write(c, "both-cut", false)
	waitAll(300)
	each(rs, func(r *replica) { r.pg.Restore(); r.redis.Restore() })
	each(rs, func(r *replica) { r.load.recording.Store(false) })
	steadyWrites, err := steady.end()
	if err != nil {
		t.Fatal(err)
	}
	writes = append(writes, steadyWrites...)

	phase("recovering")
	// Recovered: every replica ready, its local pins written back; then a
	// change through the third replica reaches all.
	each(rs, func(r *replica) {
		until(t, r.process, "ready", func(code int, body string) bool {
			return code == http.StatusOK && strings.Contains(body, `"ready"`)
		})
	})
	// A change sent again applies what it asked for, now: the runtime may
	// change under the loads.
	each(rs, func(r *replica) { r.load.want.Store(wantEither) })
	checkWrites(t, c, writes)
	if code := setExamMode(t, c.process, true); code != http.StatusOK {
		t.Fatalf("exam mode on after recovery: %d", code)
	}
	each(rs, func(r *replica) { serves(t, r, true) })
	each(rs, func(r *replica) { r.load.want.Store(wantOn) })
	waitAll(100)
	each(rs, func(r *replica) { r.load.end() })

	phase("rechecking sessions")
	// Each session first seen during the faults, on any replica, keeps
	// the value it was pinned with when asked on every replica. Those
	// pinned with exam mode off were recorded while the load wanted off.
	var evaluations, failed, wrong, sessions int64
	for _, r := range rs {
		for _, p := range r.load.recorded {
			for _, other := range rs {
				other.load.once(http.DefaultClient, p.id, p.want)
			}
		}
		sessions += int64(len(r.load.recorded))
	}
	for _, r := range rs {
		evaluations += r.load.evaluations.Load()
		failed += r.load.failed.Load()
		wrong += r.load.wrong.Load()
		if p := r.load.firstProblem.Load(); p != nil {
			t.Errorf("%s: first problem at %v", r.url, p)
		}
	}
	if failed != 0 || wrong != 0 || sessions == 0 {
		t.Fatalf("%d evaluations over 3 replicas: %d failed, %d wrong; %d sessions first seen during the faults",
			evaluations, failed, wrong, sessions)
	}
	t.Logf("%d evaluations over 3 replicas through the faults (%d sessions first seen during them, each checked on every replica), none failed or wrong",
		evaluations, sessions)
}

// checkWrites sends every change of writes that was not answered 200 again
// through r with its key, and checks in the audit log that each key's
// change is applied exactly once, that a change answered 200 was applied
// under its own request, and that one answered 503 was not.
func checkWrites(t *testing.T, r *replica, writes []keyedWrite) {
	t.Helper()
	for _, w := range writes {
		if w.status == http.StatusOK {
			continue
		}
		a, err := sendKeyed(r.process, w.flag, w.key, w.key+"-retry", w.on)
		if err != nil || a.status != http.StatusOK {
			t.Fatalf("%s sent again after recovery: %+v, %v; want 200", w.key, a, err)
		}
	}
	var page struct {
		Entries []struct {
			Seq       int64  `json:"seq"`
			RequestID string `json:"request_id"`
			Outcome   string `json:"outcome"`
		} `json:"entries"`
	}
	getJSON(t, r.process, "/v1/admin/audit?limit=1000", &page)
	applied := map[string]int{}
	for _, e := range page.Entries {
		if e.Outcome == "applied" {
			applied[e.RequestID]++
		}
	}
	counts := map[int]int{}
	for _, w := range writes {
		total := applied[w.key+"-first"] + applied[w.key+"-retry"]
		switch {
		case total != 1:
			t.Errorf("%s (first answered %d %s): applied %d times, want exactly once", w.key, w.status, w.code, total)
		case w.status == http.StatusOK && applied[w.key+"-first"] != 1:
			t.Errorf("%s answered 200 but its request is not the one applied", w.key)
		case w.status == http.StatusServiceUnavailable && applied[w.key+"-first"] != 0:
			t.Errorf("%s answered 503 but was applied", w.key)
		}
		counts[w.status]++
	}
	t.Logf("%d keyed writes under the faults, by first answer: %v; each applied exactly once", len(writes), counts)
}

// writer sends keyed writes through replicas in turn until ended.
type writer struct {
	stop   chan struct{}
	done   chan struct{}
	writes []keyedWrite
	err    error
}

// startWriter starts a steady write load: FREEZE_UPDATES turned on and
// off, each change with a key of its own, through each of rs in turn, one
// at a time.
func startWriter(rs []*replica) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			key := fmt.Sprintf("steady-%d", i)
			a, err := sendKeyed(rs[i%len(rs)].process, switchyard.FreezeUpdates, key, key+"-first", i%2 == 0)
			if err != nil {
				w.err = err
				return
			}
			w.writes = append(w.writes, a)
		}
	}()
	return w
}

// end stops the writer once its write in flight is answered, and returns
// every write it sent.
func (w *writer) end() ([]keyedWrite, error) {
	close(w.stop)
	<-w.done
	return w.writes, w.err
}

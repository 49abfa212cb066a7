package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/provider"
)

// app is an application evaluating through the provider as the issue's
// trial did: four goroutines every 5 ms, EXAM_MODE and FREEZE_UPDATES,
// live and in a session of the current phase each (first seen in the
// phase, so pinned to what the phase expects). Once the test expects
// values, every result is checked against them; the goroutines read the
// appExpectation before they evaluate, so an evaluation made before the
// provider heard of the revision expected is never counted.
type app struct {
	client      *openfeature.Client
	want        atomic.Pointer[appExpectation]
	evaluations atomic.Int64
	wrong       atomic.Int64
	mu          sync.Mutex
	firstWrong  string
	stop        func()
}

// appExpectation is what every evaluation must give in a phase.
type appExpectation struct {
	phase        int
	exam, freeze bool
	revision     string
}

func startApp(t *testing.T, client *openfeature.Client) *app {
	t.Helper()
	a := &app{client: client}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				a.evaluate(g)
			}
		})
	}
	a.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(a.stop)
	return a
}

// evaluate evaluates the two flags live and in goroutine g's session of
// the phase, and checks them against the appExpectation, if any.
func (a *app) evaluate(g int) {
	want := a.want.Load()
	phase := 0
	if want != nil {
		phase = want.phase
	}
	session := openfeature.NewTargetlessEvaluationContext(map[string]any{provider.SessionIDKey: fmt.Sprintf("s-%d-%d", g, phase)})
	for _, ec := range []openfeature.EvaluationContext{{}, session} {
		exam, _ := a.client.BooleanValue(context.Background(), switchyard.ExamMode, false, ec)
		freeze, _ := a.client.BooleanValue(context.Background(), switchyard.FreezeUpdates, false, ec)
		a.evaluations.Add(2)
		if want != nil && (exam != want.exam || freeze != want.freeze) {
			a.wrong.Add(1)
			a.mu.Lock()
			if a.firstWrong == "" {
				a.firstWrong = fmt.Sprintf("phase %d (revision %s), session %v: EXAM_MODE %v FREEZE_UPDATES %v, want %v %v",
					phase, want.revision, ec.Attributes(), exam, freeze, want.exam, want.freeze)
			}
			a.mu.Unlock()
		}
	}
}

// expect makes every evaluation from now on check want.
func (a *app) expect(want appExpectation) { a.want.Store(&want) }

// unchecked stops checking evaluations, while the server changes under
// the provider, until the next expect.
func (a *app) unchecked() { a.want.Store(nil) }

// check fails the test when any checked evaluation was wrong.
func (a *app) check(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.wrong.Load(); n > 0 {
		t.Fatalf("%d wrong values of %d evaluations; the first: %s", n, a.evaluations.Load(), a.firstWrong)
	}
}

// newApp registers an in-process provider of the server at base under the
// test's domain, starts the application and returns it with the channel
// of the provider's configuration changes.
func newApp(t *testing.T, base string) (*app, <-chan openfeature.EventDetails) {
	t.Helper()
	p, err := provider.New(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, t.Name(), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	client := openfeature.NewClient(t.Name())
	changes := make(chan openfeature.EventDetails, 64)
	onChange := func(d openfeature.EventDetails) { changes <- d }
	client.AddHandler(openfeature.ProviderConfigChange, &onChange)
	return startApp(t, client), changes
}

// heardOf waits until the provider reports revision id, the end of a
// phase's transition: the provider's next contact with the server since
// the change.
func heardOf(t *testing.T, changes <-chan openfeature.EventDetails, id string) openfeature.EventDetails {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case d := <-changes:
			if d.EventMetadata["revision_id"] == id {
				return d
			}
		case <-timeout:
			t.Fatalf("the provider never reported revision %s", id)
		}
	}
}

// currentRevision reads the server's current revision from its bundle.
func currentRevision(t *testing.T, s *process) *switchyard.Revision {
	t.Helper()
	res, err := http.Get(s.url + "/v1/bundle")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b switchyard.Bundle
	if err := json.NewDecoder(res.Body).Decode(&b); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/bundle: %d %v", res.StatusCode, err)
	}
	return b.Revision
}

// setFlag sets a system flag through the admin API.
func setFlag(t *testing.T, s *process, flag string, on bool) {
	t.Helper()
	phrase := map[bool]string{true: "ENABLE ", false: "DISABLE "}[on] + strings.ReplaceAll(flag, "_", " ")
	body := fmt.Sprintf(`{"flag": %q, "value": %v, "phrase": %q, "reason": "identity test"}`, flag, on, phrase)
	if code, res := post(t, s, "/v1/admin/runtime/flags", s.token, body); code != http.StatusOK {
		t.Fatalf("set %s %v: %d %v", flag, on, code, res)
	}
}

// allFlagsChanged fails unless d reports every flag changed, as a change
// of history does: the runtime's flags, those that did not change too.
func allFlagsChanged(t *testing.T, d openfeature.EventDetails) {
	t.Helper()
	changed := strings.Join(d.FlagChanges, " ")
	for _, flag := range []string{switchyard.ExamMode, switchyard.FreezeUpdates, "module.mastery", "runtime.profile"} {
		if !strings.Contains(changed, flag) {
			t.Fatalf("a change of history reported %v changed, want every flag", d.FlagChanges)
		}
	}
}

// A demo server restarted (the demo starts over) where an operator then
// makes a different revision 2: the provider, which served the old
// revision 2, serves the new one from its next contact on, with no wrong
// value, reports every flag changed, and serves neither a session it
// pinned before the restart nor one pinned on the new server from the old
// revision 2.
func TestDemoServerRestartedWithAnotherRevision2(t *testing.T) {
	env := map[string]string{"SWITCHYARD_TOKENS": "admin:identity-admin-secret"}
	first := startServe(t, env)
	first.token = "identity-admin-secret"
	setFlag(t, first, switchyard.FreezeUpdates, true)
	old := currentRevision(t, first)
	a, changes := newApp(t, first.url)
	a.expect(appExpectation{phase: 1, freeze: true, revision: old.ID})
	pinnedBefore := openfeature.NewTargetlessEvaluationContext(map[string]any{provider.SessionIDKey: "s-before-restart"})
	if on, _ := a.client.BooleanValue(context.Background(), switchyard.FreezeUpdates, false, pinnedBefore); !on {
		t.Fatal("a session pinned before the restart does not see FREEZE_UPDATES on")
	}

	a.waitFor(t, 100)
	a.unchecked()
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(first.url, "http://")
	second := startServe(t, env, "--addr", addr)
	second.token = first.token
	t.Cleanup(func() { _ = second.stop() })
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	setFlag(t, second, switchyard.ExamMode, true)
	again := currentRevision(t, second)
	if again.Number != old.Number || again.ID == old.ID {
		t.Fatalf("the restarted server's revision %d %s, want another revision %d", again.Number, again.ID, old.Number)
	}
	// A session the new server pinned at its revision 2.
	if code, res := post(t, second, "/v1/sessions", "", `{"session_id":"s-new-server"}`); code != http.StatusCreated {
		t.Fatalf("create a session on the new server: %d %v", code, res)
	}

	d := heardOf(t, changes, again.ID)
	a.expect(appExpectation{phase: 2, exam: true, revision: again.ID})
	allFlagsChanged(t, d)
	for _, id := range []string{"s-before-restart", "s-new-server"} {
		ec := openfeature.NewTargetlessEvaluationContext(map[string]any{provider.SessionIDKey: id})
		exam, _ := a.client.BooleanValue(context.Background(), switchyard.ExamMode, false, ec)
		freeze, _ := a.client.BooleanValue(context.Background(), switchyard.FreezeUpdates, true, ec)
		if !exam || freeze {
			t.Fatalf("session %s after the restart: EXAM_MODE %v FREEZE_UPDATES %v, want the new revision 2's on and off", id, exam, freeze)
		}
	}
	a.waitFor(t, 200)
	a.stop()
	a.check(t)
	t.Logf("%d evaluations, none wrong once the provider had heard of the new revision 2", a.evaluations.Load())
}

// waitFor waits until the application made n more evaluations.
func (a *app) waitFor(t *testing.T, n int64) {
	t.Helper()
	until := a.evaluations.Load() + n
	for deadline := time.Now().Add(10 * time.Second); a.evaluations.Load() < until; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the application made fewer than %d evaluations in 10s", n)
		}
	}
}

// restore rewinds the database at dbURL to revision n, as restoring a
// dump taken at revision n does: the later revisions and the sessions
// pinned to them are gone, and the head is n again. (The audit log, which
// refuses deletes, keeps its rows; the server does not read them.)
func restore(t *testing.T, dbURL string, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// A restore has the database to itself: no session is pinned
		// meanwhile to a revision it removes. (Sessions first: a session
		// insert locks them before it checks its revision.)
		if _, err := tx.Exec(ctx, `LOCK TABLE session_runtime_snapshot, runtime_head, revisions IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		for _, sql := range []string{
			`UPDATE runtime_head SET revision = $1`,
			`DELETE FROM session_runtime_snapshot WHERE revision > $1`,
			`DELETE FROM revisions WHERE number > $1`,
		} {
			if _, err := tx.Exec(ctx, sql, n); err != nil {
				return fmt.Errorf("%s: %w", sql, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("restore revision %d: %v", n, err)
	}
}

// A production database restored from a dump taken at revision 2 under a
// running server, while Redis keeps the later revision 3: the server
// serves the restored revision 2 at its next read of the database, the
// provider follows it from its next contact with no wrong value and
// reports every flag changed, and the next change, another revision 3,
// reaches it as any change does.
func TestDatabaseRestoredWhileRedisKeepsLaterRevisions(t *testing.T) {
	env := productionEnv(t)
	env["SWITCHYARD_TOKENS"] = "admin:" + testAdminSecret
	// Short TTLs, as a busy replica's reads would come.
	env["SWITCHYARD_CACHE_TTL"], env["SWITCHYARD_REDIS_TTL"] = "50ms", "100ms"
	s := startServe(t, env)
	s.token = testAdminSecret
	t.Cleanup(func() { _ = s.stop() })
	// Before the server stops (and once the provider has): a connection
	// the client dialled and never used would hold up the shutdown 5 s.
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	setFlag(t, s, switchyard.ExamMode, true)
	dumped := currentRevision(t, s)
	setFlag(t, s, switchyard.FreezeUpdates, true)
	lost := currentRevision(t, s)
	a, changes := newApp(t, s.url)
	a.expect(appExpectation{phase: 1, exam: true, freeze: true, revision: lost.ID})
	a.waitFor(t, 100)

	a.unchecked()
	restore(t, env["SWITCHYARD_DATABASE_URL"], dumped.Number)
	d := heardOf(t, changes, dumped.ID)
	a.expect(appExpectation{phase: 2, exam: true, revision: dumped.ID})
	allFlagsChanged(t, d)
	a.waitFor(t, 200)
	if got := currentRevision(t, s); got.ID != dumped.ID {
		t.Fatalf("the server serves revision %d %s after the restore, want the restored %d %s", got.Number, got.ID, dumped.Number, dumped.ID)
	}

	a.unchecked()
	setFlag(t, s, switchyard.ExamMode, false)
	next := currentRevision(t, s)
	if next.Number != lost.Number || next.ID == lost.ID {
		t.Fatalf("the change after the restore made revision %d %s, want another revision %d", next.Number, next.ID, lost.Number)
	}
	if d := heardOf(t, changes, next.ID); len(d.FlagChanges) != 1 || d.FlagChanges[0] != switchyard.ExamMode {
		t.Fatalf("the change after the restore reported %v, want [EXAM_MODE]", d.FlagChanges)
	}
	a.expect(appExpectation{phase: 3, revision: next.ID})
	a.waitFor(t, 200)
	a.stop()
	a.check(t)
	t.Logf("%d evaluations, none wrong once the provider had heard of each revision", a.evaluations.Load())
}

package control

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

func TestStateFileRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	good := switchyard.InitialRevision(at)
	invalid := switchyard.InitialRevision(at)
	invalid.Catalog = nil
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		mode    string
		wantErr string
	}{
		{name: "written then read", mode: "production", prepare: func(t *testing.T, dir string) {
			if err := writeStateFile(dir, good, "production", store.Identity{}, at); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "no file", mode: "production", prepare: func(*testing.T, string) {}, wantErr: "no such file"},
		{name: "corrupt", mode: "production", prepare: func(t *testing.T, dir string) {
			if err := os.WriteFile(StateFilePath(dir, "production"), []byte(`{"revision":`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "decode"},
		{name: "only another mode's file", mode: "production", prepare: func(t *testing.T, dir string) {
			if err := writeStateFile(dir, good, "demo", store.Identity{}, at); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "no such file"},
		{name: "another mode's file under this mode's name", mode: "production", prepare: func(t *testing.T, dir string) {
			if err := writeStateFile(dir, good, "demo", store.Identity{}, at); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(StateFilePath(dir, "demo"), StateFilePath(dir, "production")); err != nil {
				t.Fatal(err)
			}
		}, wantErr: `written in "demo" mode`},
		{name: "invalid revision", mode: "demo", prepare: func(t *testing.T, dir string) {
			if err := writeStateFile(dir, invalid, "demo", store.Identity{}, at); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "validate revision 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, dir)
			rev, err := ReadStateFile(dir, tt.mode, store.Identity{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadStateFile = %v, %v; want an error containing %q", rev, err, tt.wantErr)
				}
				return
			}
			if err != nil || rev.Number != good.Number || rev.ActiveProfile != good.ActiveProfile {
				t.Fatalf("ReadStateFile = %+v, %v; want revision %d back", rev, err, good.Number)
			}
			info, err := os.Stat(StateFilePath(dir, tt.mode))
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("state file mode = %v, %v; want 0600", info.Mode().Perm(), err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("the directory holds %d files, want only the state file", len(entries))
			}
		})
	}
}

// Installed revisions reach the state file, written off the path of the
// change: after a burst of changes and a flush the file holds the newest,
// and an older revision saved late never replaces it.
func TestStateFileFollowsInstalls(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := memory.NewDemo()
	c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, StateDir: dir}, st)
	for i := range 10 {
		if _, err := c.Apply(ctx, examMode(i%2 == 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rev, err := ReadStateFile(dir, switchyard.ModeDemo, store.Identity{}); err != nil || rev.Number != 11 || rev.System.ExamMode {
		t.Fatalf("state file after ten changes = %v, %v; want revision 11, the last change's, exam mode off", rev, err)
	}
	old, err := st.Revision(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	b := c.acquire()
	defer b.leave()
	// A slow reload of revision 3 comes back after the changes.
	if err := b.flags.learn(old); err != nil {
		t.Fatal(err)
	}
	b.flags.save()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rev, err := ReadStateFile(dir, switchyard.ModeDemo, store.Identity{}); err != nil || rev.Number != 11 {
		t.Fatalf("state file after revision 3 was read late = %v, %v; want revision 11 still", rev, err)
	}
}

// identified is an outage that says which installation it is; what it
// says may change, as a lazy store's does once it connects.
type identified struct {
	*outage
	id atomic.Pointer[store.Identity]
}

func newIdentified(st store.Store, id store.Identity, down bool) *identified {
	s := &identified{outage: &outage{Store: st}}
	s.id.Store(&id)
	s.outage.down.Store(down)
	return s
}

func (s *identified) Identity() store.Identity { return *s.id.Load() }

// The identities of the tests below: a database's address, and what two
// installations reached there say they are.
var (
	addrA = "db-a:5432/switchyard"
	addrB = "db-b:5432/switchyard"
	inst1 = "system 1, database switchyard, schema public"
	inst2 = "system 2, database switchyard, schema public"
)

// writeExamModeFile has a core over a store identified as from turn exam
// mode on (revision 2) and write it to the state file in dir.
func writeExamModeFile(t *testing.T, dir string, from store.Identity) {
	t.Helper()
	st := newIdentified(memory.NewDemo(), from, false)
	c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, StateDir: dir}, st)
	if _, err := c.Apply(context.Background(), examMode(true)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A core started while its store does not answer serves the state file
// only when it was written from that store: by the configured address
// while the store has not said what it is, by its installation once it
// has. A replica pointed at another database serves the conservative
// fallback, never the previous database's revision.
func TestStartThroughAnOutageServesOnlyThisStoresFile(t *testing.T) {
	tests := []struct {
		name      string
		from, cur store.Identity
		served    bool
	}{
		{"the same address, installation not known yet", store.Identity{Address: addrA, Installation: inst1}, store.Identity{Address: addrA}, true},
		{"another address", store.Identity{Address: addrA, Installation: inst1}, store.Identity{Address: addrB}, false},
		{"the same installation at another address (a failover)", store.Identity{Address: addrA, Installation: inst1}, store.Identity{Address: addrB, Installation: inst1}, true},
		{"another installation at the same address", store.Identity{Address: addrA, Installation: inst1}, store.Identity{Address: addrA, Installation: inst2}, false},
		{"a file that names no store", store.Identity{}, store.Identity{Address: addrA}, false},
		{"no store named on either side (demo)", store.Identity{}, store.Identity{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeExamModeFile(t, dir, tt.from)
			c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, StateDir: dir}, newIdentified(memory.NewDemo(), tt.cur, true))
			r := evaluate(t, c, "", switchyard.ExamMode)
			if served := r.Metadata["revision"] == int64(2); served != tt.served || r.Reason != evaluator.ReasonStale {
				t.Fatalf("EXAM_MODE = %v at revision %v (%s); the state file served: %v, want %v", r.Value, r.Metadata["revision"], r.Reason, served, tt.served)
			}
		})
	}
}

// A core whose store answers at start serves the store's revision and
// writes it over the state file, recording the store; when the file came
// from another database it warns, once, that the replica now serves
// another database than before.
func TestReachableStoreReplacesAnotherStoresFile(t *testing.T) {
	cur := store.Identity{Address: addrA, Installation: inst2}
	tests := []struct {
		name string
		from store.Identity
		warn bool
	}{
		{"the same installation", cur, false},
		{"another installation", store.Identity{Address: addrA, Installation: inst1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeExamModeFile(t, dir, tt.from)
			logs := &storetest.LogBuffer{}
			c := New(slog.New(slog.NewTextHandler(logs, nil)), Config{CacheTTL: time.Hour, StateDir: dir}, newIdentified(memory.NewDemo(), cur, false))
			if r := evaluate(t, c, "", switchyard.ExamMode); r.Value != false || r.Metadata["revision"] != int64(1) {
				t.Fatalf("EXAM_MODE = %v at revision %v, want false at the store's revision 1", r.Value, r.Metadata["revision"])
			}
			if warned := strings.Contains(logs.String(), "the state file cannot stand in for this database"); warned != tt.warn {
				t.Fatalf("warned %v, want %v; log:\n%s", warned, tt.warn, logs)
			}
			if err := c.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if rev, err := ReadStateFile(dir, switchyard.ModeDemo, cur); err != nil || rev.Number != 1 {
				t.Fatalf("state file = %v, %v; want the store's revision 1, recorded as this store's", rev, err)
			}
		})
	}
}

// A replica that served the state file through an outage and then finds
// that the database at the configured address is another installation
// (recreated meanwhile) serves that database's revision and warns.
func TestServedFileOfAnotherInstallationIsWarnedWhenTheStoreAnswers(t *testing.T) {
	dir := t.TempDir()
	writeExamModeFile(t, dir, store.Identity{Address: addrA, Installation: inst1})
	clk := newClock()
	logs := &storetest.LogBuffer{}
	st := newIdentified(memory.NewDemo(), store.Identity{Address: addrA}, true)
	c := New(slog.New(slog.NewTextHandler(logs, nil)), Config{CacheTTL: time.Second, StateDir: dir, Now: clk.now}, st)
	// The store's revision is written to the state file off the read.
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if r := evaluate(t, c, "", switchyard.ExamMode); r.Value != true || r.Metadata["revision"] != int64(2) {
		t.Fatalf("EXAM_MODE through the outage = %v at revision %v, want the file's true at revision 2", r.Value, r.Metadata["revision"])
	}
	st.id.Store(&store.Identity{Address: addrA, Installation: inst2})
	st.down.Store(false)
	clk.advance(time.Minute)
	if r := evaluate(t, c, "", switchyard.ExamMode); r.Value != false || r.Metadata["revision"] != int64(1) {
		t.Fatalf("EXAM_MODE once the store answers = %v at revision %v, want the store's false at revision 1", r.Value, r.Metadata["revision"])
	}
	if !strings.Contains(logs.String(), "the state file cannot stand in for this database") || !strings.Contains(logs.String(), inst1) {
		t.Fatalf("no warning naming the file's database; log:\n%s", logs)
	}
}

package postgres

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// TestMigrationGivesStoredRevisionsIDs migrates a database whose revisions
// were stored before revisions had IDs (a whole row and a delta): each
// gets an ID of its own, reads back with it, and the next change names
// the newest as its parent.
func TestMigrationGivesStoredRevisionsIDs(t *testing.T) {
	u, schema, owner := newSchema(t)
	ctx := testContext(t)
	pool, p, err := openProvider(ctx, u, newConfig([]Option{WithLogger(quiet)}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	p.Close()
	pool.Close()
	first := switchyard.InitialRevision(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	second, err := switchyard.SetSystemFlag(switchyard.ExamMode, true).Apply(first, first.CreatedAt.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	second.ID, second.Parent = "", "" // as the code before IDs made it
	whole, err := jsonState(first)
	if err != nil {
		t.Fatal(err)
	}
	d, err := json.Marshal(newDelta(first, second))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{schema: schema, owner: owner}
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO ` + f.table("revisions") + ` (number, created_at, state) VALUES (1, $1, $2)`, []any{first.CreatedAt, whole}},
		{`INSERT INTO ` + f.table("revisions") + ` (number, created_at, state, base, chain_bytes) VALUES (2, $1, $2, 1, $3)`,
			[]any{second.CreatedAt, d, len(d)}},
		{`INSERT INTO ` + f.table("runtime_head") + ` (revision) VALUES (2)`, nil},
	} {
		if _, err := owner.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("%s: %v", stmt.sql, err)
		}
	}

	f = openFixture(t, u, schema, owner)
	r1, err := f.store.Revision(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := f.store.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r1.ID) != 32 || len(r2.ID) != 32 || r1.ID == r2.ID || r2.Parent != r1.ID || r2.Number != 2 || !r2.System.ExamMode {
		t.Fatalf("after the migration: revision 1 %q, revision 2 %q (parent %q, exam %v); want two IDs, 1 the parent of 2",
			r1.ID, r2.ID, r2.Parent, r2.System.ExamMode)
	}
	next, _, err := f.store.Apply(ctx, store.Change{Attempt: store.Attempt{Actor: "ops"},
		Mutation: switchyard.SetSystemFlag(switchyard.FreezeUpdates, true)})
	if err != nil || next.Parent != r2.ID {
		t.Fatalf("the next change = %+v, %v; want revision 3 whose parent is %s", next, err, r2.ID)
	}
}

// TestRestoredDatabase: a database restored from a backup taken at
// revision 2, where another process then makes a different revision 3,
// is read as it is by a store that cached the lost revision 3: Current
// and Revision answer the restored revisions, never the cached one.
func TestRestoredDatabase(t *testing.T) {
	f := newFixture(t)
	ctx := testContext(t)
	apply := func(s *Store, m switchyard.Mutation) *switchyard.Revision {
		t.Helper()
		rev, _, err := s.Apply(ctx, store.Change{Attempt: store.Attempt{Actor: "ops"}, Mutation: m})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	apply(f.store, switchyard.SetSystemFlag(switchyard.ExamMode, true))
	lost := apply(f.store, switchyard.SetSystemFlag(switchyard.FreezeUpdates, true))

	// The restore, as the owner: revision 3 is gone.
	for _, sql := range []string{
		`UPDATE ` + f.table("runtime_head") + ` SET revision = 2`,
		`DELETE FROM ` + f.table("revisions") + ` WHERE number > 2`,
	} {
		if _, err := f.owner.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, read := range []func() (*switchyard.Revision, error){
		func() (*switchyard.Revision, error) { return f.store.Current(ctx) },
		func() (*switchyard.Revision, error) { return f.store.Revision(ctx, 2) },
	} {
		if rev, err := read(); err != nil || rev.Number != 2 || rev.System.FreezeUpdates {
			t.Fatalf("after the restore: %+v, %v; want revision 2, FREEZE_UPDATES off", rev, err)
		}
	}
	if _, err := f.store.Revision(ctx, 3); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("Revision(3) after the restore = %v, want NOT_FOUND", err)
	}

	other, err := Open(ctx, f.url, WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	restored := apply(other, switchyard.SetActiveProfile(switchyard.ProfileFallback))
	if restored.Number != lost.Number || restored.ID == lost.ID {
		t.Fatalf("restored revision %d %s, want another revision %d", restored.Number, restored.ID, lost.Number)
	}
	for name, read := range map[string]func() (*switchyard.Revision, error){
		"Current":     func() (*switchyard.Revision, error) { return f.store.Current(ctx) },
		"Revision(3)": func() (*switchyard.Revision, error) { return f.store.Revision(ctx, 3) },
	} {
		if rev, err := read(); err != nil || rev.ID != restored.ID || rev.System.FreezeUpdates || rev.ActiveProfile != switchyard.ProfileFallback {
			t.Fatalf("%s = %+v, %v; want the restored revision 3 %s", name, rev, err, restored.ID)
		}
	}
}

package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/migrations"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// TestMigrateOnce runs two migrations at once, as replicas starting
// together do (each with its own connections, so its own Postgres
// session), then a third: exactly one applies the schema, all succeed,
// and the database holds the defaults of a new install, once.
func TestMigrateOnce(t *testing.T) {
	u, schema, owner := newSchema(t)
	var wg sync.WaitGroup
	var applied [2][]string
	var errs [2]error
	for i := range 2 {
		wg.Go(func() { applied[i], errs[i] = Migrate(testContext(t), u, WithLogger(quiet)) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("concurrent migrations failed: %v; %v", errs[0], errs[1])
	}
	all := append(slices.Clone(applied[0]), applied[1]...)
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all, files) {
		t.Fatalf("concurrent migrations applied %v and %v, want each migration exactly once", applied[0], applied[1])
	}
	again, err := Migrate(testContext(t), u, WithLogger(quiet))
	if err != nil || len(again) != 0 {
		t.Fatalf("migrating again applied %v, %v; want nothing", again, err)
	}
	status, err := MigrationStatus(testContext(t), u, WithLogger(quiet))
	if err != nil || len(status) == 0 {
		t.Fatalf("status = %v, %v", status, err)
	}
	for _, m := range status {
		if !m.Applied || m.AppliedAt.IsZero() {
			t.Errorf("migration %d %s not applied: %+v", m.Version, m.Name, m)
		}
	}

	f := openFixture(t, u, schema, owner)
	for table, want := range map[string]int{
		"revisions": 1, "runtime_head": 1, "switch_audit_log": 0, "session_runtime_snapshot": 0,
		"module_catalog": len(switchyard.DefaultCatalog()), "system_flags": 3, "runtime_profiles": 3, "module_overrides": 0,
	} {
		if n := f.count(t, table); n != want {
			t.Errorf("%s has %d rows, want %d", table, n, want)
		}
	}
	var active string
	var flagsOn int
	err = owner.QueryRow(testContext(t), `SELECT (SELECT name FROM `+f.table("runtime_profiles")+` WHERE is_active),
		(SELECT count(*) FROM `+f.table("system_flags")+` WHERE enabled)`).Scan(&active, &flagsOn)
	if err != nil || active != switchyard.ProfilePrimary || flagsOn != 0 {
		t.Errorf("active profile %q, %d flags on, %v; want primary with every flag off", active, flagsOn, err)
	}
	cur, err := f.store.Current(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	want := switchyard.InitialRevision(cur.CreatedAt)
	want.ID = cur.ID
	if !reflect.DeepEqual(cur, want) || len(cur.ID) != 32 {
		t.Fatalf("revision 1 = %+v, want the defaults of a new install %+v", cur, want)
	}
}

// SchemaVersion says how far a database is migrated without changing it:
// a fresh schema is at 0 and still has no tables afterwards.
func TestSchemaVersion(t *testing.T) {
	u, schema, owner := newSchema(t)
	have, want, err := SchemaVersion(testContext(t), u)
	if err != nil || have != 0 || want < 1 {
		t.Fatalf("SchemaVersion of a fresh schema = %d, %d, %v; want 0 and the binary's version", have, want, err)
	}
	var tables int
	if err := owner.QueryRow(testContext(t), `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, schema).
		Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the check left %d tables, %v; want none", tables, err)
	}
	if _, err := Migrate(testContext(t), u, WithLogger(quiet)); err != nil {
		t.Fatal(err)
	}
	if have, want2, err := SchemaVersion(testContext(t), u); err != nil || have != want || want2 != want {
		t.Fatalf("SchemaVersion after Migrate = %d, %d, %v; want %d twice", have, want2, err, want)
	}
}

// TestNormalizedTablesFollow checks the normalized tables show the current
// revision after changes to each of them.
func TestNormalizedTablesFollow(t *testing.T) {
	f := newFixture(t)
	v0, off := "v0", false
	for _, m := range []switchyard.Mutation{
		switchyard.SetSystemFlag(switchyard.FreezeUpdates, true),
		switchyard.SetActiveProfile(switchyard.ProfileShadow),
		switchyard.SetOverride("search", &v0, nil),
		switchyard.SetOverride("neo4j", nil, &off),
		switchyard.RegisterModule(switchyard.ModuleSpec{Key: "ranking", Kind: switchyard.KindAlgorithm, Versions: []string{"v1", "v2"},
			Defaults: map[string]string{"primary": "v2", "fallback": "v1", "shadow": "v1"}}),
		switchyard.ClearOverride("search"),
	} {
		if _, _, err := f.store.Apply(testContext(t), store.Change{Attempt: store.Attempt{Actor: "ops"}, Mutation: m}); err != nil {
			t.Fatalf("%s %s: %v", m.Action, m.Target, err)
		}
	}
	var got struct {
		freeze                 bool
		active, rankingPrimary string
		rankingVersions        []string
		overrides              []string
		neo4jEnabled           *bool
		neo4jVersion           *string
	}
	err := f.owner.QueryRow(testContext(t), `SELECT
		(SELECT enabled FROM `+f.table("system_flags")+` WHERE name = 'FREEZE_UPDATES'),
		(SELECT name FROM `+f.table("runtime_profiles")+` WHERE is_active),
		(SELECT config->'ranking'->>'version' FROM `+f.table("runtime_profiles")+` WHERE name = 'primary'),
		(SELECT versions FROM `+f.table("module_catalog")+` WHERE module_key = 'ranking'),
		(SELECT array_agg(module_key ORDER BY module_key) FROM `+f.table("module_overrides")+`),
		(SELECT is_enabled FROM `+f.table("module_overrides")+` WHERE module_key = 'neo4j'),
		(SELECT version_key FROM `+f.table("module_overrides")+` WHERE module_key = 'neo4j')`).
		Scan(&got.freeze, &got.active, &got.rankingPrimary, &got.rankingVersions, &got.overrides, &got.neo4jEnabled, &got.neo4jVersion)
	if err != nil {
		t.Fatal(err)
	}
	if !got.freeze || got.active != "shadow" || got.rankingPrimary != "v2" || !slices.Equal(got.rankingVersions, []string{"v1", "v2"}) ||
		!slices.Equal(got.overrides, []string{"neo4j"}) || got.neo4jEnabled == nil || *got.neo4jEnabled || got.neo4jVersion != nil {
		t.Fatalf("normalized tables = %+v", got)
	}
}

// TestNotifyAndRestart runs a whole installation in its own database (the
// public schema, as in production): a committed change is announced on
// RevisionChannel, a refused one is not, and the state and the audit chain
// survive closing and reopening the store.
func TestNotifyAndRestart(t *testing.T) {
	u := newDatabase(t)
	if _, err := Migrate(testContext(t), u, WithLogger(quiet)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(testContext(t), u, WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	listener, err := pgx.Connect(testContext(t), u)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(testContext(t))
	if _, err := listener.Exec(testContext(t), "LISTEN "+RevisionChannel); err != nil {
		t.Fatal(err)
	}
	change := store.Change{Attempt: store.Attempt{Actor: "ops"}, Expected: 7, Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}
	if _, _, err := s.Apply(testContext(t), change); switchyard.ErrorCode(err) != switchyard.CodeRevisionConflict {
		t.Fatalf("stale change = %v, want REVISION_CONFLICT", err)
	}
	change.Expected = 1
	if _, _, err := s.Apply(testContext(t), change); err != nil {
		t.Fatal(err)
	}
	n, err := listener.WaitForNotification(testContext(t))
	if err != nil || n.Channel != RevisionChannel || n.Payload != "2" {
		t.Fatalf("first notification = %+v, %v; want revision 2 on %s", n, err, RevisionChannel)
	}
	s.Close()

	s, err = Open(testContext(t), u, WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cur, err := s.Current(testContext(t))
	if err != nil || cur.Number != 2 || !cur.System.ExamMode {
		t.Fatalf("after restart Current = %+v, %v; want revision 2 with exam mode on", cur, err)
	}
	if v, err := s.VerifyAudit(testContext(t)); err != nil || !v.OK || v.Entries != 2 {
		t.Fatalf("after restart verify = %+v, %v; want ok with 2 entries", v, err)
	}
}

// newDatabase creates a database dropped when the test ends and returns
// its URL.
func newDatabase(t *testing.T) string {
	t.Helper()
	base := storetest.ServiceURL(t, "SWITCHYARD_TEST_DATABASE_URL")
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "switchyard_test_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(testContext(t), base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(testContext(t))
	if _, err := admin.Exec(testContext(t), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return withParam(t, base, "dbname", name)
	}
	parsed, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	parsed.Path = "/" + name
	return parsed.String()
}

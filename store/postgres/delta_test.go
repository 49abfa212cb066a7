package postgres

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// encoded returns r as its whole stored form, which is what any reader of
// a revision sees: two revisions are the same when these are equal.
func encoded(t testing.TB, r *switchyard.Revision) string {
	t.Helper()
	b, err := jsonState(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func boolFlag(on bool) switchyard.Flag {
	v := "off"
	if on {
		v = "on"
	}
	return switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &v}
}

// TestDeltaRoundTrip applies each kind of change a delta records (flags
// added, changed and deleted, evaluators and metadata changed and
// cleared, the small parts) through the delta's JSON: each revision comes
// back exactly, and its parent is left as it was.
func TestDeltaRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	r0 := switchyard.InitialRevision(now)
	r0.ID = switchyard.NewRevisionID()
	r0.Flags = map[string]switchyard.Flag{"a": boolFlag(true), "b": boolFlag(false), "c": boolFlag(true)}
	r0.Evaluators = map[string]json.RawMessage{"team": json.RawMessage(`{"in": [{"var": "email"}, ["x"]]}`)}
	r0.Metadata = map[string]any{"owner": "ops"}
	steps := []func(r *switchyard.Revision){
		func(r *switchyard.Revision) { r.System.FreezeUpdates = true },
		func(r *switchyard.Revision) {
			r.Flags = maps.Clone(r.Flags)
			r.Flags["b"] = boolFlag(true)
			r.Flags["d"] = boolFlag(false)
			delete(r.Flags, "a")
		},
		func(r *switchyard.Revision) {
			r.Evaluators = map[string]json.RawMessage{"team": json.RawMessage(`{"in": [{"var": "email"}, ["y"]]}`)}
			r.Metadata = map[string]any{"owner": "ops", "tier": 1.0}
		},
		func(r *switchyard.Revision) { r.Evaluators, r.Metadata = nil, nil },
		func(r *switchyard.Revision) { r.ActiveProfile = switchyard.ProfileFallback },
		func(r *switchyard.Revision) { r.Flags = nil },
	}
	revs := []*switchyard.Revision{r0}
	for i, step := range steps {
		next := revs[i].Clone()
		next.Number++
		next.ID, next.Parent = switchyard.NewRevisionID(), revs[i].ID
		next.CreatedAt = next.CreatedAt.Add(time.Minute)
		step(next)
		revs = append(revs, next)
	}
	before := encoded(t, r0)
	var ds []*delta
	for i := 1; i < len(revs); i++ {
		b, err := json.Marshal(newDelta(revs[i-1], revs[i]))
		if err != nil {
			t.Fatal(err)
		}
		d, err := decodeDelta(revs[i].Number, revs[i].ID, b)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
		if got, want := encoded(t, applyDeltas(r0, ds)), encoded(t, revs[i]); got != want {
			t.Errorf("revision %d read back as\n%s\nwant\n%s", revs[i].Number, got, want)
		}
		one := applyDeltas(revs[i-1], []*delta{d})
		if got, want := encoded(t, one), encoded(t, revs[i]); got != want {
			t.Errorf("revision %d from its parent read back as\n%s\nwant\n%s", revs[i].Number, got, want)
		}
	}
	if after := encoded(t, r0); after != before {
		t.Errorf("applying deltas changed their parent:\n%s\nwant\n%s", after, before)
	}
}

// TestRevisionsReadWhole makes a history of every kind of change the
// store is given, long enough to start several chains, and reads each
// revision back from stores that have cached nothing, an older revision,
// and a newer one: each reads exactly as Apply returned it.
func TestRevisionsReadWhole(t *testing.T) {
	f := newFixture(t)
	ctx := testContext(t)
	doc := switchyard.Document{Flags: map[string]switchyard.Flag{},
		Evaluators: map[string]json.RawMessage{"team": json.RawMessage(`{"in": [{"var": "email"}, ["a@example.com"]]}`)},
		Metadata:   map[string]any{"owner": "ops"}}
	for i := range 300 {
		doc.Flags[fmt.Sprintf("flag-%03d", i)] = boolFlag(i%2 == 0)
	}
	v0 := "v0"
	mutations := []switchyard.Mutation{switchyard.ImportFlags(doc)}
	for i := range 40 {
		switch i % 5 {
		case 0, 1:
			mutations = append(mutations, switchyard.SetSystemFlag(switchyard.FreezeUpdates, i%2 == 0))
		case 2:
			mutations = append(mutations, switchyard.ImportFlags(switchyard.Document{
				Flags: map[string]switchyard.Flag{fmt.Sprintf("flag-%03d", i): boolFlag(i%3 == 0), fmt.Sprintf("new-%d", i): boolFlag(true)}}))
		case 3:
			mutations = append(mutations, switchyard.ImportFlags(switchyard.Document{Flags: map[string]switchyard.Flag{"x": boolFlag(true)},
				Evaluators: map[string]json.RawMessage{fmt.Sprintf("e%d", i): json.RawMessage(`{"==": [1, 1]}`)},
				Metadata:   map[string]any{"step": float64(i)}}))
		case 4:
			mutations = append(mutations, switchyard.SetOverride("search", &v0, nil), switchyard.ClearOverride("search"))
		}
	}
	applied := map[int64]string{}
	var last int64
	for _, m := range mutations {
		r, _, err := f.store.Apply(ctx, store.Change{Attempt: store.Attempt{Actor: "ops", Role: "admin", Reason: "test"}, Mutation: m})
		if err != nil {
			t.Fatalf("%s: %v", m.Action, err)
		}
		applied[r.Number], last = encoded(t, r), r.Number
	}
	var whole, deltas int
	if err := f.owner.QueryRow(ctx, `SELECT count(*) FILTER (WHERE base IS NULL), count(*) FILTER (WHERE base IS NOT NULL) FROM `+
		f.table("revisions")).Scan(&whole, &deltas); err != nil {
		t.Fatal(err)
	}
	if whole < 3 || deltas < len(mutations)/2 {
		t.Fatalf("%d whole rows and %d deltas for %d revisions: want several chains, mostly deltas", whole, deltas, last)
	}

	read := func(name string, s *Store, order []int64) {
		for _, n := range order {
			r, err := s.Revision(ctx, n)
			if err != nil {
				t.Fatalf("%s: revision %d: %v", name, n, err)
			}
			if got := encoded(t, r); got != applied[n] {
				t.Fatalf("%s: revision %d reads\n%s\nwant\n%s", name, n, got, applied[n])
			}
		}
	}
	var ascending []int64
	for n := int64(2); n <= last; n++ {
		ascending = append(ascending, n)
	}
	shuffled := append([]int64(nil), ascending...)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	read("cold, shuffled", f.reopen(t), shuffled)
	read("cold, ascending", f.reopen(t), ascending)
	cur := f.reopen(t)
	r, err := cur.Current(ctx)
	if err != nil || encoded(t, r) != applied[last] {
		t.Fatalf("current on a cold store = %v, %v", r, err)
	}
	read("newest cached, shuffled", cur, shuffled)
}

// reopen opens another store on the fixture's schema, which has cached
// nothing.
func (f *fixture) reopen(t testing.TB) *Store {
	t.Helper()
	s, err := Open(testContext(t), f.url, WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestToggleCostsWhatItChanged stores 10,000 flags, then toggles
// FREEZE_UPDATES 1,000 times: the revisions table, indexes and TOAST
// included, grows by less than 50 MB (stored whole, as before migration
// 00003, each toggle took about 290 KB after compression, so 1,000 about
// 290 MB), and the last revision still reads whole.
func TestToggleCostsWhatItChanged(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 changes of a revision of 10,000 flags: not in -short")
	}
	f := newFixture(t)
	ctx := testContext(t)
	// Each flag has a description of its own, as imported flags do, so
	// the stored revision does not compress to almost nothing.
	doc := switchyard.Document{Flags: map[string]switchyard.Flag{}}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 10_000 {
		f := boolFlag(i%2 == 0)
		f.Metadata = map[string]any{"description": fmt.Sprintf("feature %d, owned by team %x", i, rnd.Uint64())}
		doc.Flags[fmt.Sprintf("feature-%05d", i)] = f
	}
	apply := func(m switchyard.Mutation) *switchyard.Revision {
		r, _, err := f.store.Apply(ctx, store.Change{Attempt: store.Attempt{Actor: "ops", Role: "admin", Reason: "test"}, Mutation: m})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	apply(switchyard.ImportFlags(doc))
	size := func() int64 {
		var n int64
		if err := f.owner.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass)`, f.table("revisions")).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := size()
	var last *switchyard.Revision
	for i := range 1000 {
		last = apply(switchyard.SetSystemFlag(switchyard.FreezeUpdates, i%2 == 0))
	}
	grew := size() - before
	t.Logf("1,000 toggles with 10,000 flags stored: the revisions table grew by %.1f MB (%d bytes)", float64(grew)/1e6, grew)
	if grew > 50<<20 {
		t.Errorf("the revisions table grew by %d bytes, want under 50 MB", grew)
	}
	r, err := f.reopen(t).Revision(ctx, last.Number)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Flags) != 10_000 || encoded(t, r) != encoded(t, last) {
		t.Fatalf("revision %d reads back with %d flags, not as it was applied", r.Number, len(r.Flags))
	}
}

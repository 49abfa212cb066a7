package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

func TestInstallNeverGoesBack(t *testing.T) {
	// A slow reload that read revision 1 must not undo revision 2, which a
	// write installed in the meantime.
	ctx := context.Background()
	st := memory.NewDemo()
	first, err := st.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := st.Apply(ctx, store.Change{Attempt: store.Attempt{Actor: "replica-2", Role: "admin", Reason: "r"},
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
	if err != nil {
		t.Fatal(err)
	}
	f := newFlagSets(slog.New(slog.DiscardHandler), st, switchyard.ModeDemo, DefaultCacheTTL, time.Now, "", ignore{})
	for _, rev := range []*switchyard.Revision{second, first} {
		if err := f.install(rev); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.cur.Load().rev.Number; got != 2 {
		t.Fatalf("current = revision %d, want 2", got)
	}
	// Revision 1 was never current here, so it is not cached; it is read
	// from the store when a session needs it.
	fs, err := f.forRevision(ctx, 1, first.ID)
	if err != nil || fs.Revision() != 1 {
		t.Fatalf("forRevision(1) = %v, %v", fs, err)
	}
}

// When the store's history is rewound (a database restored from a backup
// taken at revision 2, then another revision 3 made), the core serves the
// store's revision 3 though it served a revision 3 already, tells streams
// that every flag changed, and serves no session from the lost history's
// pins: a session pinned there, which the store still names, is served
// the live values as STALE, its pin unreadable.
func TestInstallFollowsARewoundHistory(t *testing.T) {
	ctx := context.Background()
	h := storetest.NewHistory(t, memory.NewDemo())
	c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour}, h)
	h.Change(t, switchyard.SetSystemFlag(switchyard.ExamMode, true))
	lost := h.Change(t, switchyard.SetSystemFlag(switchyard.FreezeUpdates, true))
	if st, err := c.Status(ctx); err != nil || st.Revision != lost.Number {
		t.Fatalf("status = %+v, %v; want revision 3", st, err)
	}
	if r := evaluate(t, c, "s-lost", switchyard.FreezeUpdates); r.Value != true || r.Reason == evaluator.ReasonStale {
		t.Fatalf("session pinned at the lost revision 3 reads %+v, want FREEZE_UPDATES on", r)
	}
	sub := c.Subscribe(ctx)
	defer sub.Close()

	h.Rewind(2)
	restored := h.Change(t, switchyard.SetActiveProfile(switchyard.ProfileFallback))
	if st, err := c.Status(ctx); err != nil || st.Revision != 3 || st.Profile != switchyard.ProfileFallback {
		t.Fatalf("status after the restore = %+v, %v; want the restored revision 3", st, err)
	}
	var ev switchyard.RevisionEvent
	select {
	case ev = <-sub.Events:
	case <-time.After(10 * time.Second): // bounds a failing test only
		t.Fatal("no stream event for the restored revision")
	}
	if ev.RevisionID != restored.ID || !slices.Contains(ev.Changed, "module.mastery") || !slices.Contains(ev.Changed, switchyard.FreezeUpdates) {
		t.Fatalf("stream event = %+v, want revision %s with every flag changed", ev, restored.ID)
	}
	for _, tt := range []struct {
		session, key string
		want         any
		stale        bool
	}{
		{"", switchyard.FreezeUpdates, false, false},
		{"", "runtime.profile", switchyard.ProfileFallback, false},
		{"s-new", "runtime.profile", switchyard.ProfileFallback, false},
		{"s-lost", switchyard.FreezeUpdates, false, true},
	} {
		r := evaluate(t, c, tt.session, tt.key)
		if r.Value != tt.want || (r.Reason == evaluator.ReasonStale) != tt.stale {
			t.Errorf("session %q reads %s = %v (%s), want %v (stale %v)", tt.session, tt.key, r.Value, r.Reason, tt.want, tt.stale)
		}
	}
}

// Installing a revision compiles only what it changed, and an old revision
// that a session needs once it has left the cache is compiled from the
// current one: either way it shares the compiled flags, so an old revision
// that toggled a switch holds a few kilobytes of its own, not a copy of
// every flag, and its sessions still see their revision's values.
func TestOldRevisionsShareCompiledFlags(t *testing.T) {
	ctx := context.Background()
	c, _ := newCore(t)
	off := "off"
	doc := switchyard.Document{Flags: map[string]switchyard.Flag{}}
	for i := range 1000 {
		doc.Flags[fmt.Sprintf("flag-%04d", i)] = switchyard.Flag{State: switchyard.StateEnabled,
			Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &off,
			Targeting: json.RawMessage(fmt.Sprintf(`{"if": [{"in": [{"var": "email"}, ["user-%d@example.com"]]}, "on", null]}`, i)),
			Metadata:  map[string]any{"owner": "team-" + strconv.Itoa(i%7)}}
	}
	if _, err := c.Apply(ctx, Change{Actor: "admin:alice", Role: switchyard.RoleAdmin, Action: "import_flags", Target: "flags",
		Reason: "flags", Phrase: switchyard.ImportPhrase,
		Plan: func() (Plan, error) {
			return Plan{Phrase: switchyard.ImportPhrase, Mutation: switchyard.ImportFlags(doc)}, nil
		}}); err != nil {
		t.Fatal(err)
	}
	b := c.acquire()
	defer b.leave()
	withFlags := b.flags.cur.Load().set.Size()
	// Session s-i is pinned to revision i+3, which turned EXAM_MODE on
	// for even i; a last toggle leaves them all old.
	const toggles = 20
	for i := range toggles + 1 {
		if _, err := c.Apply(ctx, examMode(i%2 == 0)); err != nil {
			t.Fatal(err)
		}
		evaluate(t, c, fmt.Sprintf("s-%d", i), "flag-0001")
	}
	check := func(when string) {
		for i := range toggles {
			n := int64(i + 3)
			r := evaluate(t, c, fmt.Sprintf("s-%d", i), "flag-0001")
			want := map[string]any{"owner": "team-1", "revision": n, "pinned": true}
			if !reflect.DeepEqual(r.Metadata, want) || r.Reason != evaluator.ReasonDefault {
				t.Errorf("%s: session s-%d reads %+v, want the default with metadata %v", when, i, r, want)
			}
			if r := evaluate(t, c, fmt.Sprintf("s-%d", i), switchyard.ExamMode); r.Value != (i%2 == 0) {
				t.Errorf("%s: session s-%d reads EXAM_MODE %v, want its revision's %v", when, i, r.Value, i%2 == 0)
			}
			rev, err := b.store.Revision(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			fs, ok := b.flags.old.Get(rev.ID)
			if !ok {
				t.Fatalf("%s: revision %d is not cached", when, n)
			}
			if fs.Size() > withFlags/50 {
				t.Errorf("%s: revision %d holds %d bytes of its own, want a few kilobytes beside the %d of the revision that brought the flags",
					when, n, fs.Size(), withFlags)
			}
		}
	}
	check("installed in turn")
	b.flags.old.Purge()
	check("compiled again from the current revision")
}

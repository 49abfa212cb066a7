package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
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
	fs, err := f.forRevision(ctx, 1)
	if err != nil || fs.Revision() != 1 {
		t.Fatalf("forRevision(1) = %v, %v", fs, err)
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
			fs, ok := b.flags.old.Get(n)
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

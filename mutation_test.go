package switchyard_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// A change that touches no general flag shares the flags, evaluators and
// metadata of the revision it was made from, so a toggle does not copy
// thousands of flags; an import merges into new maps and leaves the
// revision it was made from as it was, since readers and pinned sessions
// may still hold it.
func TestRevisionsShareWhatAChangeLeaves(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	on := "on"
	flag := switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{"on": true}, DefaultVariant: &on}
	cur := switchyard.InitialRevision(now)
	cur.Flags = map[string]switchyard.Flag{"checkout": flag}
	cur.Evaluators = map[string]json.RawMessage{"staff": json.RawMessage(`{"in": ["@", {"var": "email"}]}`)}
	cur.Metadata = map[string]any{"team": "payments"}
	flags, evaluators, metadata := maps.Clone(cur.Flags), maps.Clone(cur.Evaluators), maps.Clone(cur.Metadata)
	same := func(a, b any) bool { return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() }

	toggled, err := switchyard.SetSystemFlag(switchyard.FreezeUpdates, true).Apply(cur, now)
	if err != nil {
		t.Fatal(err)
	}
	if !same(toggled.Flags, cur.Flags) || !same(toggled.Evaluators, cur.Evaluators) || !same(toggled.Metadata, cur.Metadata) {
		t.Error("a toggle copied the flags, evaluators or metadata instead of sharing them")
	}

	imported, err := switchyard.ImportFlags(switchyard.Document{
		Flags:      map[string]switchyard.Flag{"banner": flag},
		Evaluators: map[string]json.RawMessage{"beta": json.RawMessage(`{"in": ["beta", {"var": "groups"}]}`)},
		Metadata:   map[string]any{"env": "prod"},
	}).Apply(cur, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(imported.Flags) != 2 || len(imported.Evaluators) != 2 || len(imported.Metadata) != 2 {
		t.Fatalf("import made %d flags, %d evaluators, %d metadata entries; want 2 of each",
			len(imported.Flags), len(imported.Evaluators), len(imported.Metadata))
	}
	if !reflect.DeepEqual(cur.Flags, flags) || !reflect.DeepEqual(cur.Evaluators, evaluators) || !reflect.DeepEqual(cur.Metadata, metadata) {
		t.Errorf("the import changed the revision it was made from: %d flags, %d evaluators, %d metadata entries, want 1 of each",
			len(cur.Flags), len(cur.Evaluators), len(cur.Metadata))
	}
}

// A mutation bound to its base revision applies while what it changes is
// as it was there, whatever else changed since, and is refused with
// REVISION_CONFLICT once what it changes moved on.
func TestBoundToBase(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := switchyard.InitialRevision(now)
	apply := func(t *testing.T, m switchyard.Mutation, cur *switchyard.Revision) *switchyard.Revision {
		t.Helper()
		next, err := m.Apply(cur, now)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	v0 := "v0"
	tests := []struct {
		name     string
		between  switchyard.Mutation
		change   switchyard.Mutation
		conflict bool
	}{
		{"another flag changed", switchyard.SetSystemFlag(switchyard.FreezeUpdates, true),
			switchyard.SetSystemFlag(switchyard.ExamMode, true), false},
		{"the same flag changed", switchyard.SetSystemFlag(switchyard.ExamMode, true),
			switchyard.SetSystemFlag(switchyard.ExamMode, false), true},
		{"another module overridden", switchyard.SetOverride("search", &v0, nil),
			switchyard.SetOverride("mastery", &v0, nil), false},
		{"the same module overridden", switchyard.SetOverride("mastery", &v0, nil),
			switchyard.SetOverride("mastery", nil, new(bool)), true},
		{"the profile switched", switchyard.SetActiveProfile(switchyard.ProfileFallback),
			switchyard.SetActiveProfile(switchyard.ProfileShadow), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := apply(t, tt.between, base)
			_, err := tt.change.BoundTo(base).Apply(cur, now)
			if got := switchyard.ErrorCode(err) == switchyard.CodeRevisionConflict; got != tt.conflict || (!tt.conflict && err != nil) {
				t.Fatalf("Apply = %v, want conflict %v", err, tt.conflict)
			}
		})
	}
}

// Reverting a change sets what it touched back to how it was before it,
// exactly (an override it merged into is restored, not cleared), unless
// what it touched was changed since: then the revert is a conflict.
func TestRevert(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v0, off := "v0", false
	before, err := switchyard.SetOverride("mastery", &v0, nil).Apply(switchyard.InitialRevision(now), now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change switchyard.Mutation
		check  func(r *switchyard.Revision) bool
	}{
		{"system flag", switchyard.SetSystemFlag(switchyard.ExamMode, true),
			func(r *switchyard.Revision) bool { return !r.System.ExamMode }},
		{"profile", switchyard.SetActiveProfile(switchyard.ProfileFallback),
			func(r *switchyard.Revision) bool { return r.ActiveProfile == switchyard.ProfilePrimary }},
		{"override merged", switchyard.SetOverride("mastery", nil, &off),
			func(r *switchyard.Revision) bool {
				o := r.Overrides["mastery"]
				return o.Enabled == nil && o.Version != nil && *o.Version == "v0"
			}},
		{"override added", switchyard.SetOverride("search", &v0, nil),
			func(r *switchyard.Revision) bool { _, ok := r.Overrides["search"]; return !ok }},
		{"override cleared", switchyard.ClearOverride("mastery"),
			func(r *switchyard.Revision) bool { return *r.Overrides["mastery"].Version == "v0" }},
		{"profile updated", switchyard.UpdateProfile(switchyard.ProfilePrimary, map[string]switchyard.ProfilePatch{"mastery": {Version: &v0}}),
			func(r *switchyard.Revision) bool {
				return r.Profiles[switchyard.ProfilePrimary].Modules["mastery"].Version == "v1"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applied, err := tt.change.Apply(before, now)
			if err != nil {
				t.Fatal(err)
			}
			revert, ok := tt.change.Revert(before, applied)
			if !ok {
				t.Fatal("not revertible")
			}
			reverted, err := revert.Apply(applied, now)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(reverted) {
				t.Fatalf("reverted revision does not hold what was before: %+v", reverted)
			}
			// What it touched is no longer as the change left it (here,
			// reverted already): the revert is refused.
			if _, err := revert.Apply(reverted, now); switchyard.ErrorCode(err) != switchyard.CodeRevisionConflict {
				t.Fatalf("revert after a manual change = %v, want REVISION_CONFLICT", err)
			}
		})
	}
	for _, m := range []switchyard.Mutation{
		switchyard.RegisterModule(switchyard.ModuleSpec{Key: "mastery", Versions: []string{"v2"}}),
		switchyard.ImportFlags(switchyard.Document{}),
	} {
		if _, ok := m.Revert(before, before); ok || m.Revertible() {
			t.Errorf("%s is revertible", m.Action)
		}
	}
}

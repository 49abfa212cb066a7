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

package switchyard

import (
	"encoding/json"
	"maps"
	"reflect"
	"testing"
	"time"
)

// TestRevisionMarshalJSON: a revision encodes to what its fields encode
// to, flags included, whether its flags are encoded afresh, shared with
// the revision encoded just before, or a changed copy of them.
func TestRevisionMarshalJSON(t *testing.T) {
	on, off := "on", "off"
	flag := func(def *string) Flag {
		return Flag{State: StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: def}
	}
	r1 := InitialRevision(time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC))
	r1.Flags = map[string]Flag{"a": flag(&on), "b": flag(&off)}
	toggled := r1.Clone()
	toggled.Number, toggled.System.FreezeUpdates = 2, true
	changed := toggled.Clone()
	changed.Number = 3
	changed.Flags = maps.Clone(changed.Flags)
	changed.Flags["b"] = flag(&on)
	none := changed.Clone()
	none.Number, none.Flags = 4, nil

	for _, r := range []*Revision{r1, toggled, changed, none} {
		got, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal((*revisionFields)(r))
		if err != nil {
			t.Fatal(err)
		}
		var g, w map[string]any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("revision %d encodes to invalid JSON %s: %v", r.Number, got, err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("revision %d encodes to\n%s\nwant\n%s", r.Number, got, want)
		}
	}
}

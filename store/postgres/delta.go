package postgres

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// maxChain bounds how many deltas follow a whole row before the next whole
// one, so reading any revision applies at most this many. The other bound
// is in bytes: a whole row is written again once the deltas after the last
// one would outweigh it. Together they keep reading a revision within
// about twice the bytes of one whole revision, and storing 1,000 toggles of
// a revision of 10,000 flags within a few whole copies of it.
const maxChain = 1024

// delta is how a revision is stored when it is stored against the one
// before it (migration 00003): its number, its parent's ID, time, system
// flags and active profile; the catalog, profiles, overrides, shared
// evaluators and flag-set metadata only when they changed (whole); the
// general flags it set or changed, and the keys of those it deleted. A
// toggle of a system flag is stored in about 250 bytes, however many flags
// there are. The revision's own ID is its row's (migration 00004).
type delta struct {
	Number int64 `json:"number"`
	// Parent is the ID of the revision the delta applies to, so a reader
	// holding a revision of that number can tell whether it is that one;
	// empty in deltas stored before IDs were.
	Parent        string                          `json:"parent,omitempty"`
	CreatedAt     time.Time                       `json:"created_at"`
	System        switchyard.SystemFlags          `json:"system"`
	ActiveProfile string                          `json:"active_profile"`
	Catalog       *[]switchyard.Module            `json:"catalog,omitempty"`
	Profiles      *map[string]switchyard.Profile  `json:"profiles,omitempty"`
	Overrides     *map[string]switchyard.Override `json:"overrides,omitempty"`
	Evaluators    *map[string]json.RawMessage     `json:"evaluators,omitempty"`
	Metadata      *map[string]any                 `json:"metadata,omitempty"`
	Flags         map[string]switchyard.Flag      `json:"flags,omitempty"`
	Deleted       []string                        `json:"deleted_flags,omitempty"`
	// id is the ID of the revision the delta makes, from its row.
	id string
}

// chain is where the head's row stands in its chain of deltas.
type chain struct {
	// base is the number of the whole row the head's chain starts at (the
	// head's own number when its row is whole).
	base int64
	// bytes adds up the deltas after base, up to and including the head's.
	bytes int64
	// baseBytes is the stored size of the whole row at base.
	baseBytes int64
}

// row is one revision as the revisions table stores it.
type row struct {
	base       *int64
	state      []byte
	chainBytes int64
}

// encodeRow encodes next, made from cur (the head, at c in its chain), as
// a delta when that keeps the chain within its bounds, else whole.
func encodeRow(cur, next *switchyard.Revision, c chain) (row, error) {
	if cur != nil && next.Number == cur.Number+1 && next.Number-c.base <= maxChain {
		d, err := json.Marshal(newDelta(cur, next))
		if err != nil {
			return row{}, fmt.Errorf("encode revision %d: %w", next.Number, err)
		}
		if total := c.bytes + int64(len(d)); total <= c.baseBytes {
			return row{base: &c.base, state: d, chainBytes: total}, nil
		}
	}
	state, err := jsonState(next)
	return row{state: state}, err
}

// newDelta returns what next changed from cur.
func newDelta(cur, next *switchyard.Revision) *delta {
	d := &delta{Number: next.Number, Parent: next.Parent, CreatedAt: next.CreatedAt, System: next.System, ActiveProfile: next.ActiveProfile}
	if !reflect.DeepEqual(cur.Catalog, next.Catalog) {
		d.Catalog = &next.Catalog
	}
	if !reflect.DeepEqual(normal(cur.Profiles), normal(next.Profiles)) {
		d.Profiles = replaced(next.Profiles)
	}
	if !reflect.DeepEqual(normal(cur.Overrides), normal(next.Overrides)) {
		d.Overrides = replaced(next.Overrides)
	}
	if !reflect.DeepEqual(normal(cur.Evaluators), normal(next.Evaluators)) {
		d.Evaluators = replaced(next.Evaluators)
	}
	if !reflect.DeepEqual(normal(cur.Metadata), normal(next.Metadata)) {
		d.Metadata = replaced(next.Metadata)
	}
	if cur.SharesFlags(next) {
		return d
	}
	for key, f := range next.Flags {
		if old, ok := cur.Flags[key]; !ok || !old.Equal(f) {
			if d.Flags == nil {
				d.Flags = map[string]switchyard.Flag{}
			}
			d.Flags[key] = f
		}
	}
	for key := range cur.Flags {
		if _, ok := next.Flags[key]; !ok {
			d.Deleted = append(d.Deleted, key)
		}
	}
	return d
}

// replaced returns what a delta holds for a map it replaces: a pointer to
// it, or to an empty map when it is nil, which JSON would encode as null
// and so decode as unchanged.
func replaced[V any](m map[string]V) *map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	return &m
}

// normal returns m, or nil when it is empty: to a revision, a nil map and
// an empty one are the same.
func normal[V any](m map[string]V) map[string]V {
	if len(m) == 0 {
		return nil
	}
	return m
}

// decodeDelta decodes the delta stored as revision n under id.
func decodeDelta(n int64, id string, state []byte) (*delta, error) {
	var d delta
	if err := json.Unmarshal(state, &d); err != nil {
		return nil, fmt.Errorf("decode revision %d: %w", n, err)
	}
	d.id = id
	return &d, nil
}

// applyDeltas returns the revision the deltas ds make, in order, of
// parent, which they leave as it was: what a delta does not replace is
// shared with the revision before it, as Revision.Clone shares flags, and
// revisions are never changed in place. Flags are copied once, on the
// first delta that changes one, and the copy is then changed in place; a
// chain that changes no flag shares parent's.
func applyDeltas(parent *switchyard.Revision, ds []*delta) *switchyard.Revision {
	r := parent
	owned := false
	for _, d := range ds {
		next := *r
		next.Number, next.CreatedAt, next.System, next.ActiveProfile = d.Number, d.CreatedAt.UTC(), d.System, d.ActiveProfile
		// A delta applies to the revision numbered just below it, its
		// parent, even where the delta does not record the parent's ID.
		next.ID, next.Parent = d.id, r.ID
		if d.Catalog != nil {
			next.Catalog = *d.Catalog
		}
		if d.Profiles != nil {
			next.Profiles = *d.Profiles
		}
		if d.Overrides != nil {
			next.Overrides = *d.Overrides
		}
		if d.Evaluators != nil {
			next.Evaluators = *d.Evaluators
		}
		if d.Metadata != nil {
			next.Metadata = *d.Metadata
		}
		if len(d.Flags) > 0 || len(d.Deleted) > 0 {
			if !owned {
				next.Flags = maps.Clone(r.Flags)
				if next.Flags == nil {
					next.Flags = map[string]switchyard.Flag{}
				}
				owned = true
			}
			maps.Copy(next.Flags, d.Flags)
			for _, key := range d.Deleted {
				delete(next.Flags, key)
			}
		}
		r = &next
	}
	return r
}

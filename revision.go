package switchyard

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync/atomic"
	"time"
)

// The system flags: global boolean switches an operator flips in an emergency.
const (
	ExamMode      = "EXAM_MODE"
	FreezeUpdates = "FREEZE_UPDATES"
	AdminFreeze   = "ADMIN_FREEZE"
)

// SystemFlagNames lists the system flags in display order.
var SystemFlagNames = []string{ExamMode, FreezeUpdates, AdminFreeze}

// SystemFlags holds the global kill switches of one revision.
type SystemFlags struct {
	ExamMode      bool `json:"EXAM_MODE"`
	FreezeUpdates bool `json:"FREEZE_UPDATES"`
	AdminFreeze   bool `json:"ADMIN_FREEZE"`
}

// Get returns the value of the named system flag, and false for ok when the
// name is not a system flag.
func (s SystemFlags) Get(name string) (value, ok bool) {
	switch name {
	case ExamMode:
		return s.ExamMode, true
	case FreezeUpdates:
		return s.FreezeUpdates, true
	case AdminFreeze:
		return s.AdminFreeze, true
	}
	return false, false
}

// AdminFrozen returns the ADMIN_FREEZE_ACTIVE refusal of an admin change
// while ADMIN_FREEZE is on, and nil otherwise. Every change but the one
// lifting the freeze asks it: a mutation as it applies (Mutation.Apply),
// and the mode toggle, which makes no revision, as it is admitted.
func (s SystemFlags) AdminFrozen() error {
	if s.AdminFreeze {
		return Errorf(CodeAdminFreezeActive, "ADMIN_FREEZE is on: admin changes are refused until it is lifted")
	}
	return nil
}

// Kind says what a module is: an algorithm with versions, or an
// infrastructure toggle that the conservative fallback turns off.
type Kind string

// The module kinds.
const (
	KindAlgorithm Kind = "algorithm"
	KindInfra     Kind = "infra"
)

// Module is one entry of the catalog: a swappable part of the application
// and the versions it may be served at.
type Module struct {
	Key      string   `json:"key"`
	Kind     Kind     `json:"kind"`
	Versions []string `json:"versions"`
}

// Allows reports whether version is one of the module's versions.
func (m Module) Allows(version string) bool { return slices.Contains(m.Versions, version) }

// ProfileEntry is what a profile sets for one module.
type ProfileEntry struct {
	Version string `json:"version"`
	Enabled bool   `json:"enabled"`
}

// Profile is a named runtime mode: a default version and enabled state for
// every module in the catalog.
type Profile struct {
	Name    string                  `json:"name"`
	Modules map[string]ProfileEntry `json:"modules"`
}

// Override is an operator's per-module decision that beats the active
// profile. A nil field leaves that part to the profile.
type Override struct {
	Version *string `json:"version,omitempty"`
	Enabled *bool   `json:"enabled,omitempty"`
}

// Revision is an immutable, numbered state of everything an operator
// controls. Every accepted change makes a new one; nothing edits an old one,
// which is what lets a session stay pinned to the revision it started on.
//
// A revision's number says where it stands in its store's history, and
// its ID says which revision it is. Numbers repeat across histories: a
// demo server restarted starts over at 1, a database restored from an
// earlier backup (or a replica promoted with a shorter history) numbers
// its next changes as the lost ones were numbered, and each mode's store
// numbers its own revisions. IDs never repeat: every cache of revisions,
// compiled flag sets and pins, and every client that follows the server,
// compares IDs, and a number only orders revisions of one history.
type Revision struct {
	Number int64 `json:"number"`
	// ID names this revision and no other, in any history: 128 random
	// bits drawn when the revision is made (NewRevisionID), stored with it
	// and never changed. It is empty only on revisions that were never
	// stored (the conservative fallback) and on copies kept by older
	// versions (a state file, a cache entry), which are then known by
	// number alone.
	ID string `json:"id,omitempty"`
	// Parent is the ID of the revision this one was made from; empty for
	// the first revision of a store, and for revisions stored before IDs
	// were. A revision whose parent is the one a client holds is its
	// successor in the same history, with nothing to check.
	Parent        string              `json:"parent,omitempty"`
	CreatedAt     time.Time           `json:"created_at"`
	System        SystemFlags         `json:"system"`
	Catalog       []Module            `json:"catalog"`
	Profiles      map[string]Profile  `json:"profiles"`
	ActiveProfile string              `json:"active_profile"`
	Overrides     map[string]Override `json:"overrides"`
	// Flags are general OpenFeature flags in flagd's flag definition format.
	Flags map[string]Flag `json:"flags,omitempty"`
	// Evaluators are flagd's shared targeting fragments, referenced by $ref.
	Evaluators map[string]json.RawMessage `json:"evaluators,omitempty"`
	// Metadata is flagd's flag-set metadata, merged under each flag's own.
	Metadata map[string]any `json:"metadata,omitempty"`
}

// MarshalJSON encodes r as encoding/json encodes its fields, the flags
// last, reusing the encoding of the flags of the revision encoded just
// before when r shares them (Revision.Clone): with thousands of flags, the
// flags are nearly all of a revision's bytes, and a toggle changes none, so
// storing, caching and saving the revision it makes costs little.
func (r *Revision) MarshalJSON() ([]byte, error) {
	flags, err := encodeFlags(r.Flags)
	if err != nil {
		return nil, err
	}
	fields := *(*revisionFields)(r)
	fields.Flags = nil
	b, err := json.Marshal(&fields)
	if err != nil || flags == nil {
		return b, err
	}
	// The flags are spliced in rather than encoded as a json.RawMessage,
	// which encoding/json would scan again, byte by byte.
	out := make([]byte, 0, len(b)+len(`,"flags":`)+len(flags))
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"flags":`...)
	out = append(out, flags...)
	return append(out, '}'), nil
}

// revisionFields is Revision without its methods, so MarshalJSON can
// encode its other fields the default way.
type revisionFields Revision

// encodedFlags is the encoding of one flag map. It holds the map, so the
// map cannot be freed and its address reused by another while compared.
type encodedFlags struct {
	flags map[string]Flag
	json  json.RawMessage
}

// lastFlags is the flag map encoded last, with its encoding.
var lastFlags atomic.Pointer[encodedFlags]

// encodeFlags returns flags encoded, nil for none, reusing the last
// encoding when flags is the map it was made of.
func encodeFlags(flags map[string]Flag) (json.RawMessage, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	if last := lastFlags.Load(); last != nil && sameMap(last.flags, flags) {
		return last.json, nil
	}
	b, err := json.Marshal(flags)
	if err != nil {
		return nil, err
	}
	lastFlags.Store(&encodedFlags{flags: flags, json: b})
	return b, nil
}

// NewRevisionID returns a new revision ID: 128 bits from crypto/rand, in
// hex. Drawn rather than derived from the revision's content or its
// parent's ID, it costs nothing to make, nothing to check on a read, and
// it cannot repeat whatever a restore or a promotion brings back: a
// revision made after a history was rewound always gets an ID no revision
// of the lost history had.
func NewRevisionID() string {
	var b [16]byte
	// crypto/rand.Read never fails: it crashes the program instead.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Module returns the catalog entry for key.
func (r *Revision) Module(key string) (Module, bool) {
	i, ok := slices.BinarySearchFunc(r.Catalog, key, func(m Module, k string) int {
		switch {
		case m.Key < k:
			return -1
		case m.Key > k:
			return 1
		}
		return 0
	})
	if !ok {
		return Module{}, false
	}
	return r.Catalog[i], true
}

// ProfileNames returns the profile names in sorted order.
func (r *Revision) ProfileNames() []string {
	return slices.Sorted(maps.Keys(r.Profiles))
}

// Clone returns a copy a mutation can build the next revision in without
// touching the one readers may still hold: deep, but for the flags, the
// evaluators and the flag-set metadata, which it shares.
func (r *Revision) Clone() *Revision {
	c := *r
	c.Catalog = make([]Module, len(r.Catalog))
	for i, m := range r.Catalog {
		m.Versions = slices.Clone(m.Versions)
		c.Catalog[i] = m
	}
	c.Profiles = make(map[string]Profile, len(r.Profiles))
	for name, p := range r.Profiles {
		c.Profiles[name] = Profile{Name: p.Name, Modules: maps.Clone(p.Modules)}
	}
	c.Overrides = make(map[string]Override, len(r.Overrides))
	for k, o := range r.Overrides {
		c.Overrides[k] = o.clone()
	}
	// Flags, evaluators and metadata are shared: a revision may hold
	// thousands of flags, and most changes touch none. A mutation that
	// changes them gives next a new map (never writes into the shared one),
	// so the revision it was made from keeps its own.
	return &c
}

// SharesFlags reports whether r and o hold one flag map: one was cloned
// from the other and neither changed a flag. Comparing such revisions flag
// by flag is needless, and with thousands of flags, costly.
func (r *Revision) SharesFlags(o *Revision) bool { return sameMap(r.Flags, o.Flags) }

func (o Override) clone() Override {
	var c Override
	if o.Version != nil {
		v := *o.Version
		c.Version = &v
	}
	if o.Enabled != nil {
		e := *o.Enabled
		c.Enabled = &e
	}
	return c
}

var keyPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
var versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate checks that the revision's structure is consistent: every
// profile and override names a module of the catalog and a version it
// allows, and every general flag has a key it may have. Whether the flags
// themselves compile is for the evaluator to say: evaluator.Validate checks
// both, and stores call it before writing, so an invalid state is never
// stored.
func (r *Revision) Validate() error {
	if len(r.Catalog) == 0 {
		return Errorf(CodeInvalidRequest, "the catalog has no modules")
	}
	for i, m := range r.Catalog {
		if !keyPattern.MatchString(m.Key) {
			return Errorf(CodeInvalidRequest, "module key %q must be lower case letters, digits and underscores", m.Key)
		}
		if i > 0 && r.Catalog[i-1].Key >= m.Key {
			return Errorf(CodeInvalidRequest, "the catalog must be sorted by key without duplicates (at %q)", m.Key)
		}
		if m.Kind != KindAlgorithm && m.Kind != KindInfra {
			return Errorf(CodeInvalidRequest, "module %q: kind must be %q or %q", m.Key, KindAlgorithm, KindInfra)
		}
		if len(m.Versions) == 0 {
			return Errorf(CodeInvalidRequest, "module %q has no versions", m.Key)
		}
		for _, v := range m.Versions {
			if !versionPattern.MatchString(v) {
				return Errorf(CodeInvalidRequest, "module %q: version %q must be letters, digits, '.', '_' or '-'", m.Key, v)
			}
		}
	}
	if _, ok := r.Profiles[r.ActiveProfile]; !ok {
		return Errorf(CodeUnknownProfile, "active profile %q is not defined", r.ActiveProfile)
	}
	for name, p := range r.Profiles {
		if p.Name != name {
			return Errorf(CodeInvalidRequest, "profile %q is stored under %q", p.Name, name)
		}
		for key, e := range p.Modules {
			if err := r.checkVersion(key, e.Version); err != nil {
				return fmt.Errorf("profile %q: %w", name, err)
			}
		}
		for _, m := range r.Catalog {
			if _, ok := p.Modules[m.Key]; !ok {
				return Errorf(CodeInvalidRequest, "profile %q sets no version for module %q", name, m.Key)
			}
		}
	}
	for key, o := range r.Overrides {
		if o.Version == nil && o.Enabled == nil {
			return Errorf(CodeInvalidRequest, "override of %q sets neither version nor enabled", key)
		}
		if _, ok := r.Module(key); !ok {
			return unknownModule(key)
		}
		if o.Version != nil {
			if err := r.checkVersion(key, *o.Version); err != nil {
				return err
			}
		}
	}
	for key := range r.Flags {
		if err := ValidateFlagKey(key); err != nil {
			return err
		}
	}
	return nil
}

// checkVersion returns an error unless module key exists and allows version.
func (r *Revision) checkVersion(key, version string) error {
	m, ok := r.Module(key)
	if !ok {
		return unknownModule(key)
	}
	if !m.Allows(version) {
		return Errorf(CodeUnknownVersion, "module %q has no version %q", key, version).
			With("module", key).With("allowed_versions", m.Versions)
	}
	return nil
}

func unknownModule(key string) *Error {
	return Errorf(CodeUnknownModule, "module %q is not in the catalog", key).With("module", key)
}

package evaluator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator/jsonlogic"
)

// MetadataRevision is the metadata key of the revision every result
// carries: telemetry reports it as the flag's version, and the server's
// bulk ETag leaves it out.
const MetadataRevision = "revision"

// The other metadata every result carries, and the variants of boolean
// runtime flags.
const (
	metadataPinned = "pinned"
	variantOn      = "on"
	variantOff     = "off"
)

// compiledFlag is one flag ready to evaluate: variants checked, targeting
// compiled. It holds nothing of the revision it was compiled for (the
// metadata naming the revision is the flag set's), so every revision that
// defines the flag alike, with the same shared evaluators under what its
// rule reads, shares it.
type compiledFlag struct {
	key string
	// def is the definition the flag was compiled from: a later revision
	// with the same definition reuses the flag.
	def switchyard.Flag
	// reads lists the shared evaluators the targeting rule reads, directly
	// or through other evaluators, present or not: a change to any of them
	// recompiles the flag.
	reads          []string
	disabled       bool
	variants       map[string]any
	defaultVariant string
	hasDefault     bool
	targeting      *jsonlogic.Rule
	// parseErr is set when the targeting rule does not compile: the flag
	// then evaluates to PARSE_ERROR, as it does in flagd.
	parseErr error
	// size estimates the bytes the compiled flag holds (see FlagSet.Size).
	size int64
}

// compileFlag checks and compiles one flag, its rule's $ref expanded from
// the evaluators scan holds. When only the targeting rule is at fault it
// returns the flag (evaluating to PARSE_ERROR) along with the error:
// Validate refuses it, while Compile still serves the revision's other
// flags.
func compileFlag(key string, f switchyard.Flag, scan *ruleScanner) (*compiledFlag, error) {
	if f.Invalid != "" {
		return &compiledFlag{key: key, def: f, parseErr: errors.New(f.Invalid), size: flagBytes}, nil
	}
	if f.State != switchyard.StateEnabled && f.State != switchyard.StateDisabled {
		return nil, flagError(key, "state", "must be %q or %q", switchyard.StateEnabled, switchyard.StateDisabled)
	}
	if len(f.Variants) == 0 {
		return nil, flagError(key, "variants", "must define at least one variant")
	}
	if err := checkVariantTypes(key, f.Variants); err != nil {
		return nil, err
	}
	cf := &compiledFlag{key: key, def: f, disabled: f.State == switchyard.StateDisabled, variants: f.Variants,
		size: flagBytes + mapBytes(len(f.Variants))}
	if len(f.Metadata) > 0 {
		cf.size += mapBytes(len(f.Metadata))
	}
	if f.DefaultVariant != nil {
		if _, ok := f.Variants[*f.DefaultVariant]; !ok {
			return nil, flagError(key, "defaultVariant", "names no variant: %q", *f.DefaultVariant)
		}
		cf.defaultVariant, cf.hasDefault = *f.DefaultVariant, true
	}
	if len(f.Targeting) > 0 {
		var expanded int64
		cf.reads, expanded = scan.scan(f.Targeting)
		t, err := compileTargeting(key, f.Targeting, scan.compiler)
		if err != nil {
			cf.parseErr = err
			return cf, err
		}
		cf.targeting = t
		if t != nil {
			cf.size += ruleBytesPerByte * expanded
		}
	}
	return cf, nil
}

// checkVariantTypes enforces flagd's schema: the variants of a flag are
// all booleans, all strings, all numbers or all objects, so a flag has one
// OpenFeature type.
func checkVariantTypes(key string, variants map[string]any) error {
	var first jsonlogic.Kind
	var firstName string
	for _, name := range slices.Sorted(maps.Keys(variants)) {
		k := variantKind(variants[name])
		if k == jsonlogic.KindNull {
			return flagError(key, "variants."+name, "must be a boolean, string, number or object")
		}
		if firstName == "" {
			first, firstName = k, name
		} else if k != first {
			return flagError(key, "variants."+name, "is %s, but variant %q is %s: a flag's variants share one type",
				k, firstName, first)
		}
	}
	return nil
}

func variantKind(x any) jsonlogic.Kind {
	switch x.(type) {
	case bool:
		return jsonlogic.KindBool
	case string:
		return jsonlogic.KindString
	case float64, int, int64:
		return jsonlogic.KindNumber
	case map[string]any, []any:
		return jsonlogic.KindObject
	}
	return jsonlogic.KindNull
}

func flagError(key, path, format string, args ...any) *switchyard.Error {
	e := switchyard.Errorf(switchyard.CodeInvalidRequest, "flag %q: %s: "+format, append([]any{key, path}, args...)...)
	return e.With("flag", key).With("path", path)
}

// FlagSet is the compiled, immutable flag set of one revision: the runtime's
// own flags and the general flags, evaluated through one path. Flag sets
// compiled from one another (CompileFrom) share every compiled flag whose
// definition did not change; what belongs to one revision alone is small:
// the runtime's flags, the metadata naming the revision, and the general
// flags' index when a flag was added.
type FlagSet struct {
	*revisionSet
	// pinned is 1 for the view of pinned sessions, 0 for live evaluations.
	pinned int
	other  *FlagSet
}

// revisionSet is what the live and the pinned view of a revision's flag
// set share.
type revisionSet struct {
	revision   int64
	evaluators map[string]json.RawMessage
	// runtime holds the runtime's own flags, a few dozen.
	runtime map[string]*compiledFlag
	general *generalFlags
	keys    []string
	// metadata is the metadata of every flag without metadata of its own,
	// indexed by pinned: the flag-set metadata, the revision and pinned.
	metadata [2]map[string]any
	// setMetadata is the revision's flag-set metadata, merged under the
	// metadata of flags that have their own.
	setMetadata map[string]any
	// own holds the metadata of the flags that have their own, by
	// compiled flag (a *[2]map[string]any each), built at the flag's first
	// evaluation in this revision, so a revision that pinned sessions read
	// now and then holds only theirs.
	own      sync.Map
	ownBuilt atomic.Int64
	// size estimates the bytes compiling this revision added to the flag
	// set it was compiled from, own metadata excluded (see Size).
	size int64
	// compiled counts the flags compiled rather than reused, for tests.
	compiled int
}

// generalFlags are a revision's compiled general flags in key order. A
// revision that changes none shares its predecessor's, and one that adds
// or removes none shares its predecessor's index.
type generalFlags struct {
	// defs are the definitions compiled, the revision's own map: a
	// revision sharing that map (Revision.Clone does) with no evaluator
	// changed has nothing to compare.
	defs  map[string]switchyard.Flag
	keys  []string
	index map[string]int
	flags []*compiledFlag
}

// Estimates of the bytes compiled flag sets hold (FlagSet.Size), measured
// on amd64 with Go 1.26 by BenchmarkSizeEstimate, which reports the
// estimate beside the heap a compiled flag set keeps alive.
const (
	// flagBytes is a compiled flag without its definition's maps and rule.
	flagBytes = 288
	// smallMapBytes is a map of up to 8 entries, what variants and
	// metadata usually are.
	smallMapBytes = 320
	// entryBytes is one more entry of a map, or one entry of the index of
	// a revision's flags.
	entryBytes = 48
	// ruleBytesPerByte is what a compiled rule holds per byte of its JSON
	// with every $ref expanded.
	ruleBytesPerByte = 6
	// setBytes is a flag set's fixed part.
	setBytes = 512
)

// mapBytes estimates the bytes of a map of n entries.
func mapBytes(n int) int64 {
	return smallMapBytes + entryBytes*int64(max(n-8, 0))
}

// Compile builds the flag set of revision r as seen in the given system mode
// ("demo" or "production"; empty means demo): the runtime's own flags and the
// general flags, compiled through the same code.
func Compile(r *switchyard.Revision, mode string) (*FlagSet, error) {
	return CompileFrom(context.Background(), nil, r, mode)
}

// CompileFrom builds the flag set of revision r as Compile does, reusing
// every compiled flag of base whose definition r does not change, nor any
// shared evaluator its rule reads: a revision that toggles a system flag
// compiles one flag of the runtime's and no general flag, and one that
// changes a shared evaluator recompiles the flags that read it. The flags
// are shared, not copied, so base and the result hold them once. A nil
// base compiles everything. Compiling stops when ctx ends.
func CompileFrom(ctx context.Context, base *FlagSet, r *switchyard.Revision, mode string) (*FlagSet, error) {
	c := &compilation{ctx: ctx, scan: newRuleScanner(r.Evaluators)}
	var baseRuntime map[string]*compiledFlag
	var baseGeneral *generalFlags
	if base != nil {
		c.changed = changedEvaluators(base.evaluators, r.Evaluators)
		baseRuntime, baseGeneral = base.runtime, base.general
	}
	s := &revisionSet{revision: r.Number, evaluators: r.Evaluators, setMetadata: r.Metadata}
	defs := RuntimeFlags(r, mode)
	s.runtime = make(map[string]*compiledFlag, len(defs))
	for key, def := range defs {
		cf, err := c.flag(key, def, baseRuntime[key])
		if err != nil {
			return nil, err
		}
		s.runtime[key] = cf
	}
	general, err := c.general(r.Flags, baseGeneral)
	if err != nil {
		return nil, err
	}
	s.general = general
	if base != nil && sameKeySet(s.runtime, base.runtime) && sameSlice(general.keys, baseGeneral.keys) {
		s.keys = base.keys
	} else {
		s.keys = slices.Sorted(maps.Keys(s.runtime))
		s.keys = append(s.keys, general.keys...)
		slices.Sort(s.keys)
		c.size += entryBytes * int64(len(s.keys))
	}
	for pinned := range 2 {
		md := make(map[string]any, len(r.Metadata)+2)
		maps.Copy(md, r.Metadata)
		md[MetadataRevision] = r.Number
		md[metadataPinned] = pinned == 1
		s.metadata[pinned] = md
	}
	s.size = c.size + setBytes + entryBytes*int64(len(s.runtime)) + 2*mapBytes(len(r.Metadata)+2)
	s.compiled = c.compiled
	live := &FlagSet{revisionSet: s}
	live.other = &FlagSet{revisionSet: s, pinned: 1, other: live}
	return live, nil
}

// compilation is one run of CompileFrom.
type compilation struct {
	ctx  context.Context
	scan *ruleScanner
	// changed names the shared evaluators that differ from the base's.
	changed map[string]bool
	// size adds up the estimated bytes of what was built, not reused.
	size     int64
	compiled int
}

// flag returns old when it was compiled from the same definition and
// nothing its rule reads changed, else compiles def. A rule that does not
// compile leaves the flag evaluating to PARSE_ERROR, as in Compile.
func (c *compilation) flag(key string, def switchyard.Flag, old *compiledFlag) (*compiledFlag, error) {
	if old != nil && old.def.Equal(def) && !readsAny(old.reads, c.changed) {
		return old, nil
	}
	if err := c.ctx.Err(); err != nil {
		return nil, fmt.Errorf("compile flag %q: %w", key, err)
	}
	cf, err := compileFlag(key, def, c.scan)
	if cf == nil {
		return nil, err
	}
	c.compiled++
	c.size += cf.size
	return cf, nil
}

// general compiles the general flags defs, reusing old's: all of old when
// no flag changed, its index when the keys are the same.
func (c *compilation) general(defs map[string]switchyard.Flag, old *generalFlags) (*generalFlags, error) {
	if old != nil && identical(defs, old.defs) && len(c.changed) == 0 {
		return old, nil
	}
	g := &generalFlags{defs: defs}
	sameKeys := old != nil && len(old.keys) == len(defs)
	for key := range defs {
		if !sameKeys {
			break
		}
		_, sameKeys = old.index[key]
	}
	if sameKeys {
		g.keys, g.index = old.keys, old.index
	} else {
		g.keys = slices.Sorted(maps.Keys(defs))
		g.index = make(map[string]int, len(g.keys))
		for i, key := range g.keys {
			g.index[key] = i
		}
		c.size += 2 * entryBytes * int64(len(g.keys))
	}
	g.flags = make([]*compiledFlag, len(g.keys))
	unchanged := sameKeys
	for i, key := range g.keys {
		var prev *compiledFlag
		if sameKeys {
			prev = old.flags[i]
		} else if old != nil {
			if j, ok := old.index[key]; ok {
				prev = old.flags[j]
			}
		}
		cf, err := c.flag(key, defs[key], prev)
		if err != nil {
			return nil, err
		}
		g.flags[i] = cf
		unchanged = unchanged && cf == prev
	}
	if unchanged {
		return old, nil
	}
	// The slice of flags, and the revision's map of definitions it keeps.
	c.size += (8 + entryBytes) * int64(len(g.flags))
	return g, nil
}

// identical reports whether a and b are the very same map, as revisions
// that share their flags (Revision.Clone) hold them.
func identical[K comparable, V any](a, b map[K]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// sameKeySet reports whether two maps have the same keys.
func sameKeySet[V any](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// sameSlice reports whether a and b are the very same slice.
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// flagMetadata returns the metadata of f, a general flag with metadata of
// its own, building it at its first evaluation in this revision.
func (s *revisionSet) flagMetadata(f *compiledFlag) *[2]map[string]any {
	if md, ok := s.own.Load(f); ok {
		return md.(*[2]map[string]any)
	}
	md := new([2]map[string]any)
	for pinned := range 2 {
		m := make(map[string]any, len(s.setMetadata)+len(f.def.Metadata)+2)
		maps.Copy(m, s.setMetadata)
		maps.Copy(m, f.def.Metadata)
		m[MetadataRevision] = s.revision
		m[metadataPinned] = pinned == 1
		md[pinned] = m
	}
	stored, loaded := s.own.LoadOrStore(f, md)
	if !loaded {
		s.ownBuilt.Add(1)
	}
	return stored.(*[2]map[string]any)
}

// lookup returns the compiled flag key and the metadata its results carry
// in this view, or nil when the revision has no such flag.
func (fs *FlagSet) lookup(key string) (*compiledFlag, map[string]any) {
	if switchyard.IsRuntimeFlagKey(key) {
		if f, ok := fs.runtime[key]; ok {
			return f, fs.metadata[fs.pinned]
		}
	}
	i, ok := fs.general.index[key]
	if !ok {
		return nil, nil
	}
	f := fs.general.flags[i]
	if len(f.def.Metadata) == 0 {
		return f, fs.metadata[fs.pinned]
	}
	return f, fs.flagMetadata(f)[fs.pinned]
}

// Size estimates the bytes fs holds that the flag set it was compiled from
// (CompileFrom's base) does not: the flags compiled rather than reused,
// the runtime's flags, the general flags' index when it changed, the
// metadata naming the revision, and the metadata built so far for flags
// with their own. A flag set compiled without a base counts everything.
// The estimate (the constants above) is meant for bounding caches of old
// revisions, not for accounting: the garbage collector, not fs, decides
// when shared flags are freed.
func (fs *FlagSet) Size() int64 {
	return fs.size + fs.ownBuilt.Load()*(entryBytes+2*mapBytes(len(fs.setMetadata)+3))
}

// RuntimeFlags returns the runtime model of r as flagd flags (design §2):
// the system flags, SYSTEM_MODE, runtime.profile, and for each module
// module.<key> (its versions as variants, disabled when the module is off)
// and module.<key>.enabled.
func RuntimeFlags(r *switchyard.Revision, mode string) map[string]switchyard.Flag {
	if mode == "" {
		mode = switchyard.ModeDemo
	}
	flags := make(map[string]switchyard.Flag, 2*len(r.Catalog)+len(switchyard.SystemFlagNames)+2)
	for _, name := range switchyard.SystemFlagNames {
		on, _ := r.System.Get(name)
		flags[name] = boolFlag(on)
	}
	flags[switchyard.SystemModeKey] = stringFlag([]string{mode}, mode, true)
	flags[switchyard.ProfileKey] = stringFlag(r.ProfileNames(), r.ActiveProfile, true)
	rt := Resolve(r)
	for _, m := range r.Catalog {
		rm := rt.Modules[m.Key]
		flags[switchyard.ModuleFlagKey(m.Key)] = stringFlag(m.Versions, rm.Version, rm.Enabled)
		flags[switchyard.ModuleEnabledFlagKey(m.Key)] = boolFlag(rm.Enabled)
	}
	return flags
}

func boolFlag(on bool) switchyard.Flag {
	v := variantOff
	if on {
		v = variantOn
	}
	return switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{variantOn: true, variantOff: false}, DefaultVariant: &v}
}

// stringFlag is a flag whose variants are the given names, each valued as
// itself.
func stringFlag(names []string, def string, enabled bool) switchyard.Flag {
	variants := make(map[string]any, len(names))
	for _, n := range names {
		variants[n] = n
	}
	f := switchyard.Flag{State: switchyard.StateEnabled, Variants: variants, DefaultVariant: &def}
	if !enabled {
		f.State = switchyard.StateDisabled
	}
	return f
}

// Revision returns the number of the revision the flag set was compiled from.
func (fs *FlagSet) Revision() int64 { return fs.revision }

// Pinned returns the same flag set seen by a pinned session: evaluations
// carry the metadata pinned true.
func (fs *FlagSet) Pinned() *FlagSet {
	if fs.pinned == 1 {
		return fs
	}
	return fs.other
}

// Keys returns every flag key in sorted order. The slice is shared: do not
// modify it.
func (fs *FlagSet) Keys() []string { return fs.keys }

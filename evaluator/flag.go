package evaluator

import (
	"maps"
	"slices"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator/jsonlogic"
)

// The metadata every result carries, and the variants of boolean runtime
// flags.
const (
	metadataRevision = "revision"
	metadataPinned   = "pinned"
	variantOn        = "on"
	variantOff       = "off"
)

// compiledFlag is a flag ready to evaluate: variants checked, targeting
// compiled, metadata merged once so evaluation allocates nothing.
type compiledFlag struct {
	key            string
	disabled       bool
	variants       map[string]any
	defaultVariant string
	hasDefault     bool
	targeting      *jsonlogic.Rule
	// parseErr is set when the targeting rule does not compile: the flag
	// then evaluates to PARSE_ERROR, as it does in flagd.
	parseErr error
	// metadata is indexed by pinned: 0 for live evaluations, 1 for pinned.
	metadata [2]map[string]any
}

// compileFlag checks and compiles one flag. When only the targeting rule
// is at fault it returns the flag (evaluating to PARSE_ERROR) along with
// the error: Revision.Validate refuses it, while Compile still serves the
// revision's other flags.
func compileFlag(key string, f switchyard.Flag, c *jsonlogic.Compiler) (*compiledFlag, error) {
	if f.State != switchyard.StateEnabled && f.State != switchyard.StateDisabled {
		return nil, flagError(key, "state", "must be %q or %q", switchyard.StateEnabled, switchyard.StateDisabled)
	}
	if len(f.Variants) == 0 {
		return nil, flagError(key, "variants", "must define at least one variant")
	}
	if err := checkVariantTypes(key, f.Variants); err != nil {
		return nil, err
	}
	cf := &compiledFlag{key: key, disabled: f.State == switchyard.StateDisabled, variants: f.Variants}
	if f.DefaultVariant != nil {
		if _, ok := f.Variants[*f.DefaultVariant]; !ok {
			return nil, flagError(key, "defaultVariant", "names no variant: %q", *f.DefaultVariant)
		}
		cf.defaultVariant, cf.hasDefault = *f.DefaultVariant, true
	}
	if len(f.Targeting) > 0 {
		t, err := compileTargeting(key, f.Targeting, c)
		if err != nil {
			cf.parseErr = err
			return cf, err
		}
		cf.targeting = t
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
// own flags and the general flags, evaluated through one path.
type FlagSet struct {
	revision int64
	flags    map[string]*compiledFlag
	keys     []string
	pinned   int
	other    *FlagSet
}

// Compile builds the flag set of revision r as seen in the given system mode
// ("demo" or "production"; empty means demo): the runtime's own flags and the
// general flags, compiled through the same code.
func Compile(r *switchyard.Revision, mode string) (*FlagSet, error) {
	defs := RuntimeFlags(r, mode)
	maps.Copy(defs, r.Flags)
	flags := make(map[string]*compiledFlag, len(defs))
	c := jsonlogic.NewCompiler(r.Evaluators)
	for key, f := range defs {
		cf, err := compileFlag(key, f, c)
		if cf == nil {
			return nil, err
		}
		for pinned := range 2 {
			md := make(map[string]any, len(r.Metadata)+len(f.Metadata)+2)
			maps.Copy(md, r.Metadata)
			maps.Copy(md, f.Metadata)
			md[metadataRevision] = r.Number
			md[metadataPinned] = pinned == 1
			cf.metadata[pinned] = md
		}
		flags[key] = cf
	}
	live := &FlagSet{revision: r.Number, flags: flags, keys: slices.Sorted(maps.Keys(flags))}
	pinned := &FlagSet{revision: r.Number, flags: flags, keys: live.keys, pinned: 1, other: live}
	live.other = pinned
	return live, nil
}

// RuntimeFlags returns the runtime model of r as flagd flags (design §2):
// the system flags, SYSTEM_MODE, runtime.profile, and for each module
// module.<key> (its versions as variants, disabled when the module is off)
// and module.<key>.enabled.
func RuntimeFlags(r *switchyard.Revision, mode string) map[string]switchyard.Flag {
	if mode == "" {
		mode = switchyard.ModeDemo
	}
	flags := make(map[string]switchyard.Flag, len(r.Flags)+2*len(r.Catalog)+5)
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

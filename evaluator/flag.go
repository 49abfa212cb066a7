package evaluator

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/evaluator/jsonlogic"
)

// State says whether a general flag is served.
type State string

// The flag states of flagd's format.
const (
	StateEnabled  State = "ENABLED"
	StateDisabled State = "DISABLED"
)

// Flag is a general OpenFeature flag in flagd's flag definition format, the
// ecosystem's standard, so imported flags keep their meaning and exported
// ones load in flagd unchanged.
type Flag struct {
	State    State          `json:"state"`
	Variants map[string]any `json:"variants"`
	// DefaultVariant is nil when the flag has none: evaluation then returns
	// the caller's default.
	DefaultVariant *string         `json:"defaultVariant"`
	Targeting      json.RawMessage `json:"targeting,omitempty"`
	Metadata       map[string]any  `json:"metadata,omitempty"`
}

// The keys of the runtime's own flags (design §2). General flags may not use
// them or the prefixes below, so the two never collide.
const (
	SystemModeKey     = "SYSTEM_MODE"
	ProfileKey        = "runtime.profile"
	modulePrefix      = "module."
	runtimePrefix     = "runtime."
	enabledSuffix     = ".enabled"
	maxFlagKeyLength  = 256
	metadataRevision  = "revision"
	metadataPinned    = "pinned"
	variantOn         = "on"
	variantOff        = "off"
	defaultSystemMode = "demo"
)

// ModuleFlagKey returns the key of the string flag serving module's version.
func ModuleFlagKey(module string) string { return modulePrefix + module }

// ModuleEnabledFlagKey returns the key of the boolean flag saying whether
// module is on.
func ModuleEnabledFlagKey(module string) string { return modulePrefix + module + enabledSuffix }

// ValidateFlagKey rejects keys a general flag cannot have: empty, too long,
// with control characters, or reserved for the runtime's own flags.
func ValidateFlagKey(key string) error {
	if key == "" || len(key) > maxFlagKeyLength {
		return Errorf(CodeInvalidRequest, "flag key must be 1 to %d characters", maxFlagKeyLength)
	}
	for _, c := range key {
		if c < 0x20 || c == 0x7f {
			return Errorf(CodeInvalidRequest, "flag key %q contains a control character", key)
		}
	}
	if slices.Contains(SystemFlagNames, key) || key == SystemModeKey ||
		strings.HasPrefix(key, modulePrefix) || strings.HasPrefix(key, runtimePrefix) {
		return Errorf(CodeInvalidRequest, "flag key %q is reserved for the runtime's own flags", key).With("flag", key)
	}
	return nil
}

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
func compileFlag(key string, f Flag, evaluators map[string]json.RawMessage) (*compiledFlag, error) {
	if f.State != StateEnabled && f.State != StateDisabled {
		return nil, flagError(key, "state", "must be %q or %q", StateEnabled, StateDisabled)
	}
	if len(f.Variants) == 0 {
		return nil, flagError(key, "variants", "must define at least one variant")
	}
	if err := checkVariantTypes(key, f.Variants); err != nil {
		return nil, err
	}
	cf := &compiledFlag{key: key, disabled: f.State == StateDisabled, variants: f.Variants}
	if f.DefaultVariant != nil {
		if _, ok := f.Variants[*f.DefaultVariant]; !ok {
			return nil, flagError(key, "defaultVariant", "names no variant: %q", *f.DefaultVariant)
		}
		cf.defaultVariant, cf.hasDefault = *f.DefaultVariant, true
	}
	if len(f.Targeting) > 0 {
		t, err := compileTargeting(key, f.Targeting, evaluators)
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

func flagError(key, path, format string, args ...any) *Error {
	e := Errorf(CodeInvalidRequest, "flag %q: %s: "+format, append([]any{key, path}, args...)...)
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
func Compile(r *Revision, mode string) (*FlagSet, error) {
	defs := RuntimeFlags(r, mode)
	maps.Copy(defs, r.Flags)
	flags := make(map[string]*compiledFlag, len(defs))
	for key, f := range defs {
		cf, err := compileFlag(key, f, r.Evaluators)
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
func RuntimeFlags(r *Revision, mode string) map[string]Flag {
	if mode == "" {
		mode = defaultSystemMode
	}
	flags := make(map[string]Flag, len(r.Flags)+2*len(r.Catalog)+5)
	for _, name := range SystemFlagNames {
		on, _ := r.System.Get(name)
		flags[name] = boolFlag(on)
	}
	flags[SystemModeKey] = stringFlag([]string{mode}, mode, true)
	flags[ProfileKey] = stringFlag(r.ProfileNames(), r.ActiveProfile, true)
	rt := Resolve(r)
	for _, m := range r.Catalog {
		rm := rt.Modules[m.Key]
		flags[ModuleFlagKey(m.Key)] = stringFlag(m.Versions, rm.Version, rm.Enabled)
		flags[ModuleEnabledFlagKey(m.Key)] = boolFlag(rm.Enabled)
	}
	return flags
}

func boolFlag(on bool) Flag {
	v := variantOff
	if on {
		v = variantOn
	}
	return Flag{State: StateEnabled, Variants: map[string]any{variantOn: true, variantOff: false}, DefaultVariant: &v}
}

// stringFlag is a flag whose variants are the given names, each valued as
// itself.
func stringFlag(names []string, def string, enabled bool) Flag {
	variants := make(map[string]any, len(names))
	for _, n := range names {
		variants[n] = n
	}
	f := Flag{State: StateEnabled, Variants: variants, DefaultVariant: &def}
	if !enabled {
		f.State = StateDisabled
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

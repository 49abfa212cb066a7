package switchyard

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
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
	// Invalid is why a flag of a flag file that serve --flags follows
	// failed validation: flagd serves such a flag, answering PARSE_ERROR,
	// and the rest of the file, so Switchyard stores it as this reason
	// alone (its other fields empty) and every evaluation answers
	// PARSE_ERROR with it. Flag files and imports cannot set it (a flag's
	// unknown fields are refused), and export leaves such flags out.
	Invalid string `json:"invalid,omitempty"`
}

// The keys of the runtime's own flags (design §2). General flags may not use
// them or the prefixes below, so the two never collide.
const (
	SystemModeKey    = "SYSTEM_MODE"
	ProfileKey       = "runtime.profile"
	modulePrefix     = "module."
	runtimePrefix    = "runtime."
	enabledSuffix    = ".enabled"
	maxFlagKeyLength = 256
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
	if IsRuntimeFlagKey(key) {
		return Errorf(CodeInvalidRequest, "flag key %q is reserved for the runtime's own flags", key).With("flag", key)
	}
	return nil
}

// IsRuntimeFlagKey reports whether key names one of the runtime's own flags
// or is reserved for them, so no general flag has it: evaluation looks such
// a key up among the runtime's flags only.
func IsRuntimeFlagKey(key string) bool {
	return slices.Contains(SystemFlagNames, key) || key == SystemModeKey ||
		strings.HasPrefix(key, modulePrefix) || strings.HasPrefix(key, runtimePrefix)
}

// Equal reports whether f and g define the same flag: the same state,
// default, targeting, variants and metadata. A nil map and an empty one
// are equal, as they are to evaluation. The evaluator reuses what it
// compiled for an equal flag, and a store keeps only the flags a revision
// changed.
func (f Flag) Equal(g Flag) bool {
	if f.State != g.State || f.Invalid != g.Invalid || !bytes.Equal(f.Targeting, g.Targeting) {
		return false
	}
	if f.DefaultVariant != g.DefaultVariant && (f.DefaultVariant == nil || g.DefaultVariant == nil ||
		*f.DefaultVariant != *g.DefaultVariant) {
		return false
	}
	return sameValues(f.Variants, g.Variants) && sameValues(f.Metadata, g.Metadata)
}

// sameValues reports whether two maps hold equal entries.
func sameValues(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	if sameMap(a, b) {
		return true
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !reflect.DeepEqual(v, w) {
			return false
		}
	}
	return true
}

// sameMap reports whether a and b are one map, not merely equal ones.
func sameMap[K comparable, V any](a, b map[K]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

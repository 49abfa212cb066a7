package evaluator

import (
	"maps"
	"reflect"
	"slices"

	"github.com/switchyard-dev/switchyard"
)

// ChangedFlags returns, sorted, the keys of the flags whose evaluation may
// differ between revisions a and b seen in mode: flags added or removed,
// and flags whose state, variants, default, targeting or metadata differ.
// It compares definitions, not results, so a change of shared evaluators
// counts for every flag with targeting and a change of flag-set metadata
// for every flag. A nil a means every flag of b changed.
func ChangedFlags(a, b *switchyard.Revision, mode string) []string {
	after := RuntimeFlags(b, mode)
	maps.Copy(after, b.Flags)
	if a == nil {
		return slices.Sorted(maps.Keys(after))
	}
	before := RuntimeFlags(a, mode)
	maps.Copy(before, a.Flags)
	allMetadata := !sameMap(a.Metadata, b.Metadata)
	evaluators := !sameMap(a.Evaluators, b.Evaluators)
	var changed []string
	for key, f := range after {
		old, ok := before[key]
		if !ok || allMetadata || (evaluators && len(f.Targeting) > 0) || !reflect.DeepEqual(old, f) {
			changed = append(changed, key)
		}
	}
	for key := range before {
		if _, ok := after[key]; !ok {
			changed = append(changed, key)
		}
	}
	slices.Sort(changed)
	return changed
}

// sameMap reports whether two maps hold the same entries; a nil map and an
// empty one are the same, as they are to evaluation.
func sameMap[V any](a, b map[string]V) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

package evaluator

import (
	"maps"
	"reflect"
	"slices"

	"github.com/switchyard-dev/switchyard"
)

// ChangedFlags returns, sorted, the keys of the flags whose evaluation may
// differ between revisions a and b seen in mode: flags added or removed,
// flags whose state, variants, default, targeting or metadata differ, and
// flags whose rule reads a shared evaluator that differs. It compares
// definitions, not results, so a change of flag-set metadata counts for
// every flag. Revisions sharing their flags (Revision.Clone) are not
// compared flag by flag, so a toggle costs the same however many flags
// are stored. A nil a means every flag of b changed.
func ChangedFlags(a, b *switchyard.Revision, mode string) []string {
	after := RuntimeFlags(b, mode)
	if a == nil {
		keys := slices.Collect(maps.Keys(after))
		return slices.Sorted(slices.Values(append(keys, slices.Collect(maps.Keys(b.Flags))...)))
	}
	allMetadata := !sameMap(a.Metadata, b.Metadata)
	changed := changedKeys(RuntimeFlags(a, mode), after, func(string, switchyard.Flag) bool { return allMetadata })
	evaluators := changedEvaluators(a.Evaluators, b.Evaluators)
	if allMetadata || len(evaluators) > 0 || !a.SharesFlags(b) {
		scan := newRuleScanner(b.Evaluators)
		changed = append(changed, changedKeys(a.Flags, b.Flags, func(_ string, f switchyard.Flag) bool {
			return allMetadata || len(evaluators) > 0 && readsAny(scan.reads(f.Targeting), evaluators)
		})...)
	}
	slices.Sort(changed)
	return changed
}

// changedKeys returns the keys of the flags only one of before and after
// defines, defined differently, or for which also says so.
func changedKeys(before, after map[string]switchyard.Flag, also func(key string, f switchyard.Flag) bool) []string {
	var changed []string
	for key, f := range after {
		old, ok := before[key]
		if !ok || !old.Equal(f) || also(key, f) {
			changed = append(changed, key)
		}
	}
	for key := range before {
		if _, ok := after[key]; !ok {
			changed = append(changed, key)
		}
	}
	return changed
}

// sameMap reports whether two maps hold the same entries; a nil map and an
// empty one are the same, as they are to evaluation.
func sameMap[V any](a, b map[string]V) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

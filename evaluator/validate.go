package evaluator

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator/jsonlogic"
)

// Validate checks that r is a revision that may be stored and served: its
// structure (switchyard.Revision.Validate), its shared evaluators, and
// every general flag, which must compile. It judges a revision that comes
// whole (a file, an import); a change to a stored revision is judged by
// ValidateChange.
func Validate(r *switchyard.Revision) error {
	return validate(context.Background(), nil, r)
}

// ValidateChange checks next, the revision a change makes of prev, as
// Validate does, but compiles only what the change touched: the shared
// evaluators it changed and those reading them, and the general flags it
// defines anew or whose rule reads a changed evaluator. A toggle of a
// system flag therefore compiles nothing, however many flags are stored.
// What prev already held was judged when it was stored and is not judged
// again. Stores call it on every revision they are about to write, so an
// invalid change is never stored. Checking stops when ctx ends.
func ValidateChange(ctx context.Context, prev, next *switchyard.Revision) error {
	return validate(ctx, prev, next)
}

// validate checks next, compiling only what differs from prev; a nil
// prev checks everything.
func validate(ctx context.Context, prev, next *switchyard.Revision) error {
	if err := next.Validate(); err != nil {
		return err
	}
	scan := newRuleScanner(next.Evaluators)
	var changed map[string]bool
	if prev != nil {
		changed = changedEvaluators(prev.Evaluators, next.Evaluators)
	}
	if prev == nil || len(changed) > 0 {
		if err := validateEvaluators(jsonlogic.NewCompiler(affectedEvaluators(scan, changed, prev == nil))); err != nil {
			return err
		}
	}
	if prev != nil && prev.SharesFlags(next) && len(changed) == 0 {
		return nil
	}
	var check []string
	for key, f := range next.Flags {
		if prev != nil {
			old, ok := prev.Flags[key]
			if ok && old.Equal(f) && (len(changed) == 0 || !readsAny(scan.reads(f.Targeting), changed)) {
				continue
			}
		}
		check = append(check, key)
	}
	// In key order, so the same revision is always refused for the same flag.
	slices.Sort(check)
	for _, key := range check {
		if err := ctx.Err(); err != nil {
			return switchyard.Errorf(switchyard.CodeUnavailable, "validate revision %d: %v", next.Number, err)
		}
		if _, err := compileFlag(key, next.Flags[key], scan); err != nil {
			return err
		}
	}
	return nil
}

// affectedEvaluators returns the evaluators that must be compiled again
// on their own: every one when all is set, else those that changed or read
// one that did, along with the evaluators they read so that their $ref
// resolve.
func affectedEvaluators(scan *ruleScanner, changed map[string]bool, all bool) map[string]json.RawMessage {
	if all {
		return scan.evaluators
	}
	affected := map[string]json.RawMessage{}
	for name, raw := range scan.evaluators {
		reads := scan.reads(raw)
		if !changed[name] && !readsAny(reads, changed) {
			continue
		}
		affected[name] = raw
		for _, n := range reads {
			if r, ok := scan.evaluators[n]; ok {
				affected[n] = r
			}
		}
	}
	return affected
}

package console

import (
	"context"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// valueChange is one flag whose value a change alters, as applications
// would be served it without an evaluation context.
type valueChange struct {
	Key, Before, After string
}

// preview returns what mutation m would change if applied to rev, seen in
// mode: each flag whose definition differs, with the value it serves
// before and after. It applies and validates m as a store does before it
// writes (Mutation.Apply, which checks ADMIN_FREEZE, the catalog and the
// profiles; evaluator.ValidateChange, which compiles the flags it
// changes), so a change the store would refuse is refused here with the
// same error. It writes nothing.
func preview(ctx context.Context, rev *switchyard.Revision, m switchyard.Mutation, mode string, now time.Time) ([]valueChange, error) {
	next, err := m.Apply(rev, now)
	if err != nil {
		return nil, err
	}
	if err := evaluator.ValidateChange(ctx, rev, next); err != nil {
		return nil, err
	}
	before, after := evaluator.RuntimeFlags(rev, mode), evaluator.RuntimeFlags(next, mode)
	var out []valueChange
	for _, key := range evaluator.ChangedFlags(rev, next, mode) {
		out = append(out, valueChange{Key: key, Before: flagValue(lookup(rev, before, key)), After: flagValue(lookup(next, after, key))})
	}
	return out, nil
}

// lookup returns the flag key of rev: one of its runtime flags, or a
// general flag; false when it has none.
func lookup(rev *switchyard.Revision, runtime map[string]switchyard.Flag, key string) (switchyard.Flag, bool) {
	if f, ok := runtime[key]; ok {
		return f, true
	}
	f, ok := rev.Flags[key]
	return f, ok
}

// flagValue shows what a flag serves without an evaluation context: its
// default variant's value, or why there is none; and that a rule may
// serve another.
func flagValue(f switchyard.Flag, ok bool) string {
	var s string
	switch {
	case !ok:
		return "not defined"
	case f.State == switchyard.StateDisabled:
		s = "disabled (the caller's default)"
	case f.DefaultVariant == nil:
		s = "no default (the caller's default)"
	default:
		s = formatValue(f.Variants[*f.DefaultVariant])
	}
	if len(f.Targeting) > 0 {
		s += ", with targeting"
	}
	return s
}

package evaluator

import (
	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator/jsonlogic"
)

// Validate checks that r is a revision that may be stored and served: its
// structure (switchyard.Revision.Validate), its shared evaluators, and
// every general flag, which must compile. Stores call it on every revision
// they are about to write, so an invalid state is never stored.
func Validate(r *switchyard.Revision) error {
	if err := r.Validate(); err != nil {
		return err
	}
	c := jsonlogic.NewCompiler(r.Evaluators)
	if err := validateEvaluators(c); err != nil {
		return err
	}
	for key, f := range r.Flags {
		if _, err := compileFlag(key, f, c); err != nil {
			return err
		}
	}
	return nil
}

package jsonlogic

import (
	"errors"
	"fmt"
	"sync"
)

// Limits on a rule, so that neither compiling nor evaluating one can take
// seconds or gigabytes, whoever wrote the rule and whoever sends the
// context. Every real flag is far below them: the largest of the flagd
// testbed, the importer's fixtures and the migration example has 36
// operations, and none of them iterates or builds strings, so none needs
// a budget at all.
const (
	// MaxRuleOperations bounds the operations of one rule with every $ref
	// expanded: a rule that does not iterate runs each of them at most
	// once per evaluation, so this bounds its cost too.
	MaxRuleOperations = 10_000
	// MaxEvalOperations bounds the work of one evaluation of a rule that
	// iterates, builds strings and arrays, or has more than
	// maxOperationsWithoutBudget operations: each pass of map, filter,
	// reduce, all, some and none costs the operations of its body (at
	// least one), each array element in, missing and missing_some examine
	// costs one, and every 64 bytes of a string compared, searched, parsed
	// or hashed cost one, and copying the whole context one an entry.
	MaxEvalOperations = 100_000
	// MaxEvalBytes bounds the strings and arrays one evaluation builds (cat,
	// substr, reduce, map, filter, merge, missing, arrays of computed
	// elements, bucketing keys), counted as they are built, garbage
	// included: a string costs its length, an array 16 bytes an element.
	// It is the server's default limit on an OFREP request body, so a rule
	// may copy its whole context.
	MaxEvalBytes = 1 << 20
	// maxOperationsWithoutBudget is the most operations a rule may have and
	// evaluate without a budget when it neither iterates nor builds: each
	// operation may read a context value of a megabyte, so the cost of
	// such a rule is bounded by a few dozen such reads.
	maxOperationsWithoutBudget = 64
	// maxRuleDepth bounds the nesting of one rule, $ref expansions and
	// literal data included, so compiling and evaluating it stay on a short
	// stack.
	maxRuleDepth = 64
)

// ErrBudget is the failure of an evaluation that needed more than
// MaxEvalOperations or MaxEvalBytes (errors.Is); the error says which.
var ErrBudget = errors.New("evaluation budget exceeded")

// budget is what an evaluation may still spend (ops, bytes) out of its
// limits (maxOps, maxBytes). Small rules that neither iterate nor build
// strings or arrays evaluate without one: each of their operations runs
// at most once, on what it reads. The others take one from budgets.
type budget struct {
	ops, bytes       int
	maxOps, maxBytes int
}

// fullBudget is the budget of every evaluation.
var fullBudget = budget{ops: MaxEvalOperations, bytes: MaxEvalBytes, maxOps: MaxEvalOperations, maxBytes: MaxEvalBytes}

// budgets holds the budgets of evaluations. An evaluation passes its
// budget down its closures by pointer, which would otherwise cost an
// allocation each time.
var budgets = sync.Pool{New: func() any { return new(budget) }}

// spend takes ops operations and bytes bytes from the evaluation's budget.
// Without a budget, one operation alone may still spend no more than an
// evaluation could.
func (e env) spend(ops, bytes int) error { return e.b.spend(ops, bytes) }

func (b *budget) spend(ops, bytes int) error {
	if b == nil {
		if ops > MaxEvalOperations || bytes > MaxEvalBytes {
			return exceeded(&fullBudget, ops > MaxEvalOperations)
		}
		return nil
	}
	b.ops -= ops
	b.bytes -= bytes
	if b.ops < 0 || b.bytes < 0 {
		return exceeded(b, b.ops < 0)
	}
	return nil
}

func exceeded(b *budget, ops bool) error {
	if ops {
		return fmt.Errorf("%w: more than %d operations, the limit of one evaluation", ErrBudget, b.maxOps)
	}
	return fmt.Errorf("%w: more than %d bytes of strings and arrays built, the limit of one evaluation", ErrBudget, b.maxBytes)
}

// scanCost is the cost in operations of reading s whole.
func scanCost(s string) int { return len(s) / 64 }

// scan charges the evaluation for reading the strings among a and b whole:
// compared, searched or parsed. Without a budget it costs nothing, so that
// a rule that needs none pays no more than a test.
func (e env) scan(a, b Value) error {
	if e.b == nil {
		return nil
	}
	return e.b.scan(a, b)
}

func (b *budget) scan(x, y Value) error {
	return b.spend(scanCost(x.Text())+scanCost(y.Text()), 0)
}

// hashing charges the evaluation for a bucketing key built from s and
// hashed: read whole, and copied.
func (e env) hashing(s string) error {
	if e.b == nil {
		return nil
	}
	return e.b.spend(scanCost(s), len(s))
}

// elementBytes is what an array costs the budget per element: the size of
// the interface that holds it.
const elementBytes = 16

package evaluator

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"

	"github.com/switchyard-dev/switchyard/evaluator/jsonlogic"
)

// maxExpandedSize caps the expanded size scan computes, which a rule
// nesting $ref deeply could otherwise overflow; such a rule exceeds
// jsonlogic's operation limit long before and does not compile.
const maxExpandedSize = 1 << 40

// ruleScanner tells what a targeting rule reads of a revision's shared
// evaluators ($ref, expanded as flagd does, evaluators into evaluators)
// and how large it is once expanded: the first decides which flags a
// change of evaluators recompiles, the second estimates the memory of the
// compiled rule. It reads each evaluator once, however many rules refer
// to it.
type ruleScanner struct {
	evaluators map[string]json.RawMessage
	// compiler compiles rules against evaluators, each shared evaluator
	// once however many rules refer to it.
	compiler *jsonlogic.Compiler
	// refs holds, by evaluator, the names its own rule refers to.
	refs map[string][]string
	// sizes holds, by evaluator, its size once expanded; -1 while it is
	// being computed, so a cycle (which does not compile) ends.
	sizes map[string]int64
}

func newRuleScanner(evaluators map[string]json.RawMessage) *ruleScanner {
	return &ruleScanner{evaluators: evaluators, compiler: jsonlogic.NewCompiler(evaluators),
		refs: map[string][]string{}, sizes: map[string]int64{}}
}

// scan returns what rule reads and its size. reads lists, sorted, the
// evaluators rule refers to, directly or through other evaluators,
// including names no evaluator has (the rule does not compile until one
// does). expanded is the length of rule's JSON with every $ref replaced by
// the evaluator it names, as the compiled rule holds it.
func (s *ruleScanner) scan(rule json.RawMessage) (reads []string, expanded int64) {
	refs := refsIn(rule)
	expanded = int64(len(rule))
	if len(refs) == 0 {
		return nil, expanded
	}
	seen := map[string]bool{}
	queue := slices.Clone(refs)
	for len(queue) > 0 {
		name := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if !seen[name] {
			seen[name] = true
			queue = append(queue, s.evaluatorRefs(name)...)
		}
	}
	for _, name := range refs {
		expanded = min(expanded+s.evaluatorSize(name), maxExpandedSize)
	}
	return slices.Sorted(maps.Keys(seen)), expanded
}

// reads returns the evaluators rule reads, as scan does.
func (s *ruleScanner) reads(rule json.RawMessage) []string {
	reads, _ := s.scan(rule)
	return reads
}

// evaluatorRefs returns the names evaluator name refers to directly.
func (s *ruleScanner) evaluatorRefs(name string) []string {
	refs, ok := s.refs[name]
	if !ok {
		refs = refsIn(s.evaluators[name])
		s.refs[name] = refs
	}
	return refs
}

// evaluatorSize returns the expanded size of evaluator name.
func (s *ruleScanner) evaluatorSize(name string) int64 {
	if size, ok := s.sizes[name]; ok {
		return max(size, 0)
	}
	s.sizes[name] = -1
	_, size := s.scan(s.evaluators[name])
	s.sizes[name] = size
	return size
}

// refsIn returns the names rule refers to with {"$ref": name}, once per
// reference. It looks anywhere in the rule, which may find more than the
// compiler expands, never less. A rule that is not JSON refers to nothing:
// it does not compile whatever the evaluators hold.
func refsIn(rule json.RawMessage) []string {
	// Any spelling of "$ref" holds "ref" or an escape: most rules need not
	// be decoded.
	if !bytes.Contains(rule, []byte("ref")) && !bytes.Contains(rule, []byte(`\`)) {
		return nil
	}
	var x any
	if json.Unmarshal(rule, &x) != nil {
		return nil
	}
	var names []string
	var walk func(x any)
	walk = func(x any) {
		switch v := x.(type) {
		case map[string]any:
			for k, e := range v {
				if name, ok := e.(string); ok && k == "$ref" {
					names = append(names, name)
				} else {
					walk(e)
				}
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(x)
	return names
}

// changedEvaluators returns the names of the shared evaluators that a and
// b define differently, or that only one of them defines.
func changedEvaluators(a, b map[string]json.RawMessage) map[string]bool {
	changed := map[string]bool{}
	for name, ra := range a {
		if rb, ok := b[name]; !ok || !bytes.Equal(ra, rb) {
			changed[name] = true
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			changed[name] = true
		}
	}
	return changed
}

// readsAny reports whether any of the names is in changed.
func readsAny(names []string, changed map[string]bool) bool {
	for _, n := range names {
		if changed[n] {
			return true
		}
	}
	return false
}

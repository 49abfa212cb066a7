package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
)

// The converters build flagd targeting as plain Go values (maps, slices,
// strings, numbers) and marshal them once at the end. These helpers keep
// the shapes of the JsonLogic operators in one place.

// targetingKey is the evaluation context attribute that carries each
// vendor's user key (LaunchDarkly's context key, Unleash's userId, GO
// Feature Flag's targeting key).
const targetingKey = "targetingKey"

func op(name string, args ...any) map[string]any { return map[string]any{name: args} }

func attr(name string) map[string]any { return map[string]any{"var": name} }

func not(e any) any {
	if b, ok := e.(bool); ok {
		return !b
	}
	return op("!", e)
}

// present is true when the attribute is set. Comparisons need it: JsonLogic
// reads a missing attribute as null, and null compares as 0.
func present(name string) any { return op("!=", attr(name), nil) }

// all is JsonLogic "and", folding constants so converted rules stay readable.
func all(es ...any) any {
	var out []any
	for _, e := range es {
		if b, ok := e.(bool); ok {
			if !b {
				return false
			}
			continue
		}
		out = append(out, e)
	}
	switch len(out) {
	case 0:
		return true
	case 1:
		return out[0]
	}
	return op("and", out...)
}

// any_ is JsonLogic "or", folding constants.
func any_(es ...any) any {
	var out []any
	for _, e := range es {
		if b, ok := e.(bool); ok {
			if b {
				return true
			}
			continue
		}
		out = append(out, e)
	}
	switch len(out) {
	case 0:
		return false
	case 1:
		return out[0]
	}
	return op("or", out...)
}

// ifChain builds {"if": [c1, r1, c2, r2, ..., else]} from condition/result
// pairs, dropping conditions that are constantly false and stopping at the
// first that is constantly true.
func ifChain(pairs [][2]any, otherwise any) any {
	var args []any
	for _, p := range pairs {
		if b, ok := p[0].(bool); ok {
			if !b {
				continue
			}
			otherwise = p[1]
			break
		}
		args = append(args, p[0], p[1])
	}
	// A trailing branch serving what the else serves is redundant.
	for len(args) >= 2 && reflect.DeepEqual(args[len(args)-1], otherwise) {
		args = args[:len(args)-2]
	}
	if len(args) == 0 {
		return otherwise
	}
	return op("if", append(args, otherwise)...)
}

// marshalTargeting encodes a built rule as flagd targeting. A rule that is a
// plain variant name (or null) needs no targeting at all; the caller decides.
func marshalTargeting(rule any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep "<" readable in dry-run output
	if err := enc.Encode(rule); err != nil {
		return nil, fmt.Errorf("encode targeting: %w", err)
	}
	return bytes.TrimSpace(b.Bytes()), nil
}

// variantNames gives each of a flag's variants a flagd variant key: the
// preferred name when it is free, otherwise the name with a numeric suffix,
// so two vendor variants never collapse into one.
type variantNames struct {
	used map[string]bool
}

func (v *variantNames) take(preferred string) string {
	if v.used == nil {
		v.used = map[string]bool{}
	}
	name := preferred
	for i := 2; v.used[name]; i++ {
		name = fmt.Sprintf("%s-%d", preferred, i)
	}
	v.used[name] = true
	return name
}

package jsonlogic

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kind is the JSON type of a value a targeting rule computes.
type Kind uint8

// The kinds of JSON value.
const (
	KindNull Kind = iota
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

// String returns the kind's name as messages spell it: "null", "boolean",
// "number", "string", "array" or "object".
func (k Kind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

// Value is what a compiled rule computes: a JSON value kept small (four
// words, returned in registers) and built without allocating. Booleans
// and numbers are held unboxed. Strings, arrays and objects stay in the
// interface they came from (the context's or the rule's), so reading them
// allocates nothing; elements are converted when read.
type Value struct {
	k Kind
	b bool
	n float64
	x any
}

var (
	null       = Value{}
	trueValue  = Value{k: KindBool, b: true}
	falseValue = Value{k: KindBool}
)

func boolValue(b bool) Value      { return Value{k: KindBool, b: b} }
func numberValue(n float64) Value { return Value{k: KindNumber, n: n} }
func stringValue(s string) Value  { return Value{k: KindString, x: s} }
func arrayValue(a []any) Value    { return Value{k: KindArray, x: a} }

// Kind returns the JSON type of v, which says which of Bool, Float64 and
// Text holds it.
func (v Value) Kind() Kind { return v.k }

// Bool returns the boolean a KindBool value holds, and false for any
// other.
func (v Value) Bool() bool { return v.b }

// Float64 returns the number a KindNumber value holds, and 0 for any
// other.
func (v Value) Float64() float64 { return v.n }

// Text returns the string a KindString value holds, and "" for any other.
func (v Value) Text() string {
	s, _ := v.x.(string)
	return s
}

func (v Value) array() []any {
	a, _ := v.x.([]any)
	return a
}

func (v Value) object() map[string]any {
	m, _ := v.x.(map[string]any)
	return m
}

// errRule is the failure of a rule at evaluation time, where the
// JsonLogic library flagd uses fails too (flagd answers PARSE_ERROR).
type errRule struct{ msg string }

func (e *errRule) Error() string { return e.msg }

func ruleErrorf(format string, args ...any) error {
	return &errRule{msg: fmt.Sprintf(format, args...)}
}

// ErrContext is the failure of an evaluation whose context holds an
// attribute with no JSON form, which no rule can read (flagd answers
// GENERAL when it cannot encode the context).
var ErrContext = errors.New("evaluation context attribute cannot be encoded as JSON")

// fromAny converts a context or literal value to a value. The types
// encoding/json produces, and Go's other numeric types, convert without
// allocating; anything else goes through its JSON encoding, as flagd
// encodes the whole context before evaluating.
func fromAny(x any) (Value, error) {
	if _, ok := x.(string); ok {
		return Value{k: KindString, x: x}, nil
	}
	switch v := x.(type) {
	case nil:
		return null, nil
	case bool:
		return boolValue(v), nil
	case float64:
		return numberValue(v), nil
	case map[string]any:
		return Value{k: KindObject, x: v}, nil
	case []any:
		// x, not v: boxing the slice again would allocate.
		return Value{k: KindArray, x: x}, nil
	case int:
		return numberValue(float64(v)), nil
	case int64:
		return numberValue(float64(v)), nil
	case int32:
		return numberValue(float64(v)), nil
	case int16:
		return numberValue(float64(v)), nil
	case int8:
		return numberValue(float64(v)), nil
	case uint:
		return numberValue(float64(v)), nil
	case uint64:
		return numberValue(float64(v)), nil
	case uint32:
		return numberValue(float64(v)), nil
	case uint16:
		return numberValue(float64(v)), nil
	case uint8:
		return numberValue(float64(v)), nil
	case float32:
		return numberValue(float64(v)), nil
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return null, ErrContext
		}
		return numberValue(f), nil
	}
	return normalize(x)
}

// normalize converts x through its JSON encoding.
func normalize(x any) (Value, error) {
	b, err := json.Marshal(x)
	if err != nil {
		return null, ErrContext
	}
	var decoded any
	if err := json.Unmarshal(b, &decoded); err != nil {
		return null, ErrContext
	}
	return fromAny(decoded)
}

// container returns x as the map or slice a var path walks through,
// converting other Go types through JSON; ok is false for scalars.
func container(x any) (any, bool, error) {
	switch x.(type) {
	case map[string]any, []any:
		return x, true, nil
	case nil, string, bool, float64, float32, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, json.Number:
		return nil, false, nil
	}
	v, err := normalize(x)
	if err != nil {
		return nil, false, err
	}
	return v.x, v.k == KindArray || v.k == KindObject, nil
}

// toAny boxes v back into the form encoding/json produces.
func (v Value) toAny() any {
	switch v.k {
	case KindBool:
		return v.b
	case KindNumber:
		return v.n
	case KindString, KindArray, KindObject:
		return v.x
	}
	return nil
}

// truthy is JsonLogic truthiness as the library flagd uses computes it:
// false, 0, "", [], {} and null are false; NaN is true.
func (v Value) truthy() bool {
	switch v.k {
	case KindBool:
		return v.b
	case KindNumber:
		return v.n != 0
	case KindString:
		return v.Text() != ""
	case KindArray:
		return len(v.array()) > 0
	case KindObject:
		return len(v.object()) > 0
	}
	return false
}

// looseNumber converts v to a number the way comparisons do (JavaScript's
// Number(), as the library implements it): null 0, booleans 1 and 0,
// blank strings 0, unparsable strings, arrays and objects NaN.
func (v Value) looseNumber() float64 {
	switch v.k {
	case KindNull:
		return 0
	case KindBool:
		if v.b {
			return 1
		}
		return 0
	case KindNumber:
		return v.n
	case KindString:
		s := v.Text()
		if strings.TrimSpace(s) == "" {
			return 0
		}
		n, err := strconv.ParseFloat(s, 64)
		if err == nil || errors.Is(err, strconv.ErrRange) {
			return n
		}
	}
	return math.NaN()
}

// number converts v to a number the way arithmetic does: numbers as they
// are, strings parsed (0 when unparsable); anything else is an error.
func (v Value) number() (float64, error) {
	switch v.k {
	case KindNumber:
		return v.n, nil
	case KindString:
		n, _ := strconv.ParseFloat(v.Text(), 64)
		return n, nil
	}
	return 0, ruleErrorf("%s is not a number", v.k)
}

// str converts v to a string the way cat and substr do: numbers in their
// shortest decimal form, null as ""; booleans, arrays and objects are
// errors.
func (v Value) str() (string, error) {
	switch v.k {
	case KindString:
		return v.Text(), nil
	case KindNumber:
		return strconv.FormatFloat(v.n, 'f', -1, 64), nil
	case KindNull:
		return "", nil
	}
	return "", ruleErrorf("%s is not a string", v.k)
}

// looseEquals is JsonLogic's == as the library computes it: null equals
// only null, two strings compare as strings, anything else as numbers.
func looseEquals(a, b Value) bool {
	if a.k == KindNull || b.k == KindNull {
		return a.k == b.k
	}
	if a.k == KindString && b.k == KindString {
		return a.Text() == b.Text()
	}
	return a.looseNumber() == b.looseNumber()
}

// strictEquals is ===: values of different types are never equal.
func strictEquals(a, b Value) bool {
	if a.k != b.k {
		return false
	}
	if a.k == KindNull {
		return true
	}
	return looseEquals(a, b)
}

// less is JsonLogic's <: two strings compare by code points, anything else
// as numbers.
func less(a, b Value) bool {
	if a.k == KindString && b.k == KindString {
		return a.Text() < b.Text()
	}
	return a.looseNumber() < b.looseNumber()
}

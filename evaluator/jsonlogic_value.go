package evaluator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// kind is the JSON type of a value a targeting rule computes.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

// value is what a compiled rule computes: a JSON value kept small (four
// words, returned in registers) and built without allocating. Booleans
// and numbers are held unboxed. Strings, arrays and objects stay in the
// interface they came from (the context's or the rule's) in x, so reading
// them allocates nothing; elements are converted when read.
type value struct {
	k kind
	b bool
	n float64
	x any
}

var (
	null       = value{}
	trueValue  = value{k: kindBool, b: true}
	falseValue = value{k: kindBool}
)

func boolValue(b bool) value      { return value{k: kindBool, b: b} }
func numberValue(n float64) value { return value{k: kindNumber, n: n} }
func stringValue(s string) value  { return value{k: kindString, x: s} }
func arrayValue(a []any) value    { return value{k: kindArray, x: a} }

// text returns the string a string value holds.
func (v value) text() string {
	s, _ := v.x.(string)
	return s
}

func (v value) array() []any {
	a, _ := v.x.([]any)
	return a
}

func (v value) object() map[string]any {
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

// errContext is a context attribute that has no JSON form, so no rule can
// read it (flagd answers GENERAL when it cannot encode the context).
var errContext = errors.New("evaluation context attribute cannot be encoded as JSON")

// fromAny converts a context or literal value to a value. The types
// encoding/json produces, and Go's other numeric types, convert without
// allocating; anything else goes through its JSON encoding, as flagd
// encodes the whole context before evaluating.
func fromAny(x any) (value, error) {
	if _, ok := x.(string); ok {
		return value{k: kindString, x: x}, nil
	}
	switch v := x.(type) {
	case nil:
		return null, nil
	case bool:
		return boolValue(v), nil
	case float64:
		return numberValue(v), nil
	case map[string]any:
		return value{k: kindObject, x: v}, nil
	case []any:
		return arrayValue(v), nil
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
			return null, errContext
		}
		return numberValue(f), nil
	}
	return normalize(x)
}

// normalize converts x through its JSON encoding.
func normalize(x any) (value, error) {
	b, err := json.Marshal(x)
	if err != nil {
		return null, errContext
	}
	var decoded any
	if err := json.Unmarshal(b, &decoded); err != nil {
		return null, errContext
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
	return v.x, v.k == kindArray || v.k == kindObject, nil
}

// toAny boxes v back into the form encoding/json produces.
func (v value) toAny() any {
	switch v.k {
	case kindBool:
		return v.b
	case kindNumber:
		return v.n
	case kindString, kindArray, kindObject:
		return v.x
	}
	return nil
}

// truthy is JsonLogic truthiness as the library flagd uses computes it:
// false, 0, "", [], {} and null are false; NaN is true.
func (v value) truthy() bool {
	switch v.k {
	case kindBool:
		return v.b
	case kindNumber:
		return v.n != 0
	case kindString:
		return v.text() != ""
	case kindArray:
		return len(v.array()) > 0
	case kindObject:
		return len(v.object()) > 0
	}
	return false
}

// looseNumber converts v to a number the way comparisons do (JavaScript's
// Number(), as the library implements it): null 0, booleans 1 and 0,
// blank strings 0, unparsable strings, arrays and objects NaN.
func (v value) looseNumber() float64 {
	switch v.k {
	case kindNull:
		return 0
	case kindBool:
		if v.b {
			return 1
		}
		return 0
	case kindNumber:
		return v.n
	case kindString:
		s := v.text()
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
func (v value) number() (float64, error) {
	switch v.k {
	case kindNumber:
		return v.n, nil
	case kindString:
		n, _ := strconv.ParseFloat(v.text(), 64)
		return n, nil
	}
	return 0, ruleErrorf("%s is not a number", v.k)
}

// str converts v to a string the way cat and substr do: numbers in their
// shortest decimal form, null as ""; booleans, arrays and objects are
// errors.
func (v value) str() (string, error) {
	switch v.k {
	case kindString:
		return v.text(), nil
	case kindNumber:
		return strconv.FormatFloat(v.n, 'f', -1, 64), nil
	case kindNull:
		return "", nil
	}
	return "", ruleErrorf("%s is not a string", v.k)
}

// looseEquals is JsonLogic's == as the library computes it: null equals
// only null, two strings compare as strings, anything else as numbers.
func looseEquals(a, b value) bool {
	if a.k == kindNull || b.k == kindNull {
		return a.k == b.k
	}
	if a.k == kindString && b.k == kindString {
		return a.text() == b.text()
	}
	return a.looseNumber() == b.looseNumber()
}

// strictEquals is ===: values of different types are never equal.
func strictEquals(a, b value) bool {
	if a.k != b.k {
		return false
	}
	if a.k == kindNull {
		return true
	}
	return looseEquals(a, b)
}

// less is JsonLogic's <: two strings compare by code points, anything else
// as numbers.
func less(a, b value) bool {
	if a.k == kindString && b.k == kindString {
		return a.text() < b.text()
	}
	return a.looseNumber() < b.looseNumber()
}

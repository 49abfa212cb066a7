package evaluator

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator/jsonlogic"
)

// Reason is the OpenFeature resolution reason.
type Reason string

// The reasons Switchyard returns; they match flagd's.
const (
	ReasonStatic         Reason = "STATIC"
	ReasonDefault        Reason = "DEFAULT"
	ReasonTargetingMatch Reason = "TARGETING_MATCH"
	ReasonDisabled       Reason = "DISABLED"
	ReasonError          Reason = "ERROR"
	ReasonStale          Reason = "STALE"
)

// ResolutionError is the OpenFeature error code of a failed evaluation.
type ResolutionError string

// The OpenFeature error codes.
const (
	FlagNotFound        ResolutionError = "FLAG_NOT_FOUND"
	TypeMismatch        ResolutionError = "TYPE_MISMATCH"
	ParseError          ResolutionError = "PARSE_ERROR"
	General             ResolutionError = "GENERAL"
	TargetingKeyMissing ResolutionError = "TARGETING_KEY_MISSING"
	InvalidContext      ResolutionError = "INVALID_CONTEXT"
)

// Result is the outcome of evaluating one flag.
type Result struct {
	Key string
	// Value is nil when the caller's default applies: a disabled flag, a flag
	// without a default variant, or an error.
	Value        any
	Variant      string
	Reason       Reason
	ErrorCode    ResolutionError
	ErrorMessage string
	// Metadata is shared by every evaluation of the flag, and by other
	// flags of the revision: do not modify it.
	Metadata map[string]any
}

// Evaluate resolves key against the evaluation context ctx (OpenFeature's
// flattened context: targetingKey and attributes). It never fails: a problem
// is reported in the result's error code.
func (fs *FlagSet) Evaluate(key string, ctx map[string]any) Result {
	f, md := fs.lookup(key)
	if f == nil {
		return Result{Key: key, Reason: ReasonError, ErrorCode: FlagNotFound,
			ErrorMessage: fmt.Sprintf("flag %q not found", key)}
	}
	if f.disabled {
		return Result{Key: key, Reason: ReasonDisabled, Metadata: md}
	}
	if f.parseErr != nil {
		msg := f.parseErr.Error()
		var e *switchyard.Error
		if errors.As(f.parseErr, &e) {
			msg = e.Message
		}
		return Result{Key: key, Reason: ReasonError, ErrorCode: ParseError, ErrorMessage: msg, Metadata: md}
	}
	if f.targeting != nil {
		v, err := f.targeting.Eval(ctx)
		if err != nil {
			return targetingError(key, err, md)
		}
		if v.Kind() != jsonlogic.KindNull {
			variant, code, err := variantName(v)
			if err != nil {
				return Result{Key: key, Reason: ReasonError, ErrorCode: code,
					ErrorMessage: fmt.Sprintf("flag %q: targeting: %v", key, err), Metadata: md}
			}
			value, ok := f.variants[variant]
			if !ok {
				return Result{Key: key, Reason: ReasonError, ErrorCode: General,
					ErrorMessage: fmt.Sprintf("targeting chose variant %s, which flag %q does not define", quoteShort(variant), key),
					Metadata:     md}
			}
			return Result{Key: key, Value: value, Variant: variant, Reason: ReasonTargetingMatch, Metadata: md}
		}
		if !f.hasDefault {
			return Result{Key: key, Reason: ReasonDefault, Metadata: md}
		}
		return Result{Key: key, Value: f.variants[f.defaultVariant], Variant: f.defaultVariant,
			Reason: ReasonDefault, Metadata: md}
	}
	if !f.hasDefault {
		return Result{Key: key, Reason: ReasonDefault, Metadata: md}
	}
	return Result{Key: key, Value: f.variants[f.defaultVariant], Variant: f.defaultVariant,
		Reason: ReasonStatic, Metadata: md}
}

// maxQuoted is how much of a value read from the context an error message
// quotes.
const maxQuoted = 64

// quoteShort quotes s for an error message, only its first maxQuoted bytes
// and its length when it is longer: the caller may make a variant name as
// long as a whole request.
func quoteShort(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q (%d bytes)", s[:cut]+"…", len(s))
}

// Type is the value type an OpenFeature caller asks for.
type Type int

// The OpenFeature value types.
const (
	TypeBoolean Type = iota
	TypeString
	TypeInteger
	TypeFloat
	TypeObject
)

func (t Type) String() string {
	switch t {
	case TypeBoolean:
		return "boolean"
	case TypeString:
		return "string"
	case TypeInteger:
		return "integer"
	case TypeFloat:
		return "float"
	}
	return "object"
}

// As checks the result against the type the caller asked for. A value of
// another type becomes a TYPE_MISMATCH error; an integral float asked for as
// an integer becomes an int64, as OpenFeature's integer evaluation expects.
func (r Result) As(t Type) Result {
	if r.ErrorCode != "" || r.Value == nil {
		return r
	}
	switch v := r.Value.(type) {
	case bool:
		if t == TypeBoolean {
			return r
		}
	case string:
		if t == TypeString {
			return r
		}
	case float64:
		switch t {
		case TypeFloat:
			return r
		case TypeInteger:
			if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
				r.Value = int64(v)
				return r
			}
		}
	case int64:
		switch t {
		case TypeInteger:
			return r
		case TypeFloat:
			r.Value = float64(v)
			return r
		}
	case map[string]any, []any:
		if t == TypeObject {
			return r
		}
	}
	return Result{Key: r.Key, Reason: ReasonError, ErrorCode: TypeMismatch,
		ErrorMessage: fmt.Sprintf("flag %q is not of type %s", r.Key, t), Metadata: r.Metadata}
}

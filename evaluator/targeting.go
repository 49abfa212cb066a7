package evaluator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// rule is a flag's targeting compiled once per revision into closures
// over typed values: evaluating it reads the context directly, builds no
// maps and parses no JSON.
type rule struct {
	root evalFunc
	// flagKey is the key of the flag the rule belongs to, boxed once so
	// $flagd.flagKey costs nothing per evaluation.
	flagKey any
	// usesTime is set when the rule may read $flagd.timestamp, so other
	// rules never read the clock.
	usesTime bool
}

// eval runs the rule for its flag against the flattened context ctx.
func (r *rule) eval(ctx map[string]any) (value, error) {
	e := env{ctx: ctx, flagKey: r.flagKey}
	if r.usesTime {
		e.now = time.Now().Unix()
	}
	return r.root(e)
}

// evalAt runs the rule for flag key with $flagd.timestamp set to now
// (Unix seconds).
func (r *rule) evalAt(key string, ctx map[string]any, now int64) (value, error) {
	return r.root(env{ctx: ctx, flagKey: key, now: now})
}

// compileTargeting compiles a flag's targeting rule. An empty rule ({})
// means no targeting. Errors name the flag and the JSON path inside it.
func compileTargeting(key string, raw json.RawMessage, evaluators map[string]json.RawMessage) (*rule, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("{}")) {
		return nil, nil
	}
	r, err := compileRule(raw, "targeting", evaluators)
	if err != nil {
		var ce *compileError
		if errors.As(err, &ce) {
			return nil, flagError(key, ce.path, "%s", ce.msg)
		}
		return nil, flagError(key, "targeting", "%v", err)
	}
	r.flagKey = key
	return r, nil
}

// validateEvaluators compiles every shared evaluator on its own, so one
// that no flag uses yet cannot hide an error until a flag does.
func validateEvaluators(evaluators map[string]json.RawMessage) error {
	for _, name := range slices.Sorted(maps.Keys(evaluators)) {
		if _, err := compileRule(evaluators[name], "$evaluators."+name, evaluators); err != nil {
			var ce *compileError
			if errors.As(err, &ce) {
				return pathError(ce.path, "%s", ce.msg).With("evaluator", name)
			}
			return pathError("$evaluators."+name, "%v", err).With("evaluator", name)
		}
	}
	return nil
}

// targetingError is the result of a rule that failed while evaluated.
// Like flagd, a failure of the rule itself is a PARSE_ERROR, and a context
// that cannot be read is GENERAL.
func targetingError(key string, err error, md map[string]any) Result {
	code := ParseError
	if errors.Is(err, errContext) {
		code = General
	}
	return Result{Key: key, Reason: ReasonError, ErrorCode: code,
		ErrorMessage: fmt.Sprintf("flag %q: targeting: %v", key, err), Metadata: md}
}

// variantName turns a rule's result into the variant it chooses, as flagd
// does: strings name a variant, booleans and numbers name the variant
// spelled as their JSON form. Arrays and objects name none.
func variantName(v value) (string, error) {
	switch v.k {
	case kindString:
		return v.text(), nil
	case kindBool:
		if v.b {
			return "true", nil
		}
		return "false", nil
	case kindNumber:
		if math.IsInf(v.n, 0) || math.IsNaN(v.n) {
			return "", &errRule{msg: fmt.Sprintf("the rule returned %v, which has no JSON form", v.n)}
		}
		return jsonNumber(v.n), nil
	}
	return "", fmt.Errorf("the rule returned %s, not a variant name", v.k)
}

// jsonNumber formats f as encoding/json does.
func jsonNumber(f float64) string {
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		b := strconv.AppendFloat(nil, f, 'e', -1, 64)
		// Like encoding/json, write e-07 as e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return string(b)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

package evaluator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/switchyard-dev/switchyard/evaluator/jsonlogic"
)

// compileTargeting compiles a flag's targeting rule with the compiler of
// its revision. An empty rule ({}) means no targeting. Errors name the
// flag and the JSON path inside it.
func compileTargeting(key string, raw json.RawMessage, c *jsonlogic.Compiler) (*jsonlogic.Rule, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("{}")) {
		return nil, nil
	}
	r, err := c.Compile(key, raw)
	if err != nil {
		var ce *jsonlogic.CompileError
		if errors.As(err, &ce) {
			return nil, flagError(key, ce.Path, "%s", ce.Msg)
		}
		return nil, flagError(key, "targeting", "%v", err)
	}
	return r, nil
}

// validateEvaluators compiles every shared evaluator on its own, so one
// that no flag uses yet cannot hide an error until a flag does.
func validateEvaluators(c *jsonlogic.Compiler) error {
	err := c.ValidateEvaluators()
	var ce *jsonlogic.CompileError
	if !errors.As(err, &ce) {
		return err
	}
	return pathError(ce.Path, "%s", ce.Msg).With("evaluator", ce.Evaluator)
}

// targetingError is the result of a rule that failed while evaluated.
// Like flagd, a failure of the rule itself is a PARSE_ERROR, and a context
// that cannot be read is GENERAL; so is an evaluation that needed more
// than its budget, which the message says.
func targetingError(key string, err error, md map[string]any) Result {
	code := ParseError
	if errors.Is(err, jsonlogic.ErrContext) || errors.Is(err, jsonlogic.ErrBudget) {
		code = General
	}
	return Result{Key: key, Reason: ReasonError, ErrorCode: code,
		ErrorMessage: fmt.Sprintf("flag %q: targeting: %v", key, err), Metadata: md}
}

// variantName turns a rule's result into the variant it chooses, as flagd
// does: strings name a variant, booleans and numbers name the variant
// spelled as their JSON form. Arrays and objects name none (GENERAL), nor
// does a number without a JSON form, on which the library flagd uses
// fails (PARSE_ERROR); code is the error's resolution code.
func variantName(v jsonlogic.Value) (name string, code ResolutionError, err error) {
	switch v.Kind() {
	case jsonlogic.KindString:
		return v.Text(), "", nil
	case jsonlogic.KindBool:
		if v.Bool() {
			return "true", "", nil
		}
		return "false", "", nil
	case jsonlogic.KindNumber:
		n := v.Float64()
		if math.IsInf(n, 0) || math.IsNaN(n) {
			return "", ParseError, fmt.Errorf("the rule returned %v, which has no JSON form", n)
		}
		return jsonNumber(n), "", nil
	}
	return "", General, fmt.Errorf("the rule returned %s, not a variant name", v.Kind())
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

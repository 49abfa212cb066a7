package evaluator

import (
	"bytes"
	"encoding/json"
)

// compileTargeting compiles a flag's targeting rule. An empty rule ({})
// means no targeting.
func compileTargeting(key string, raw json.RawMessage, evaluators map[string]json.RawMessage) (targetingFunc, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("{}")) {
		return nil, nil
	}
	return nil, flagError(key, "targeting", "targeting rules are not supported yet")
}

// targetingData builds the data a targeting rule reads.
func targetingData(key string, ctx map[string]any) map[string]any { return ctx }

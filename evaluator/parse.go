package evaluator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard"
)

// Limits on a flag definition document, so an import cannot exhaust the
// memory or the stack of the server that parses it.
const (
	MaxDocumentSize  = 10 << 20
	MaxDocumentDepth = 100
)

// ParseDocument parses a flag definition file in flagd's format, strictly:
// well-formed JSON without duplicate keys, within MaxDocumentSize and
// MaxDocumentDepth; flags as an object (or, as flagd also accepts, an
// array of flags with a "key"), each with a state, variants of one type,
// a defaultVariant naming one of them (or null), an object as targeting
// and metadata of strings, numbers and booleans; $evaluators as objects.
// Like flagd it allows $schema and ignores other top-level keys, but it
// refuses unknown keys inside a flag, where they are typos. Every error is
// an *Error naming the flag and the JSON path inside it. Targeting rules
// are compiled later, by Revision.Validate and Compile.
func ParseDocument(data []byte) (switchyard.Document, error) { return parseDocument(data, false) }

// ParseFlagFile parses a flag file as flagd serves one (switchyard serve
// --flags): the document must be flagd's format, as ParseDocument says,
// but a flag that fails validation (its definition or its rule) does not
// fail it. The flag is kept with Invalid saying why, so it evaluates to
// PARSE_ERROR while the rest of the file is served. (A key reserved for
// the runtime's own flags is left for the caller: no revision may hold
// it, and an import skips it.)
func ParseFlagFile(data []byte) (switchyard.Document, error) {
	doc, err := parseDocument(data, true)
	if err != nil {
		return switchyard.Document{}, err
	}
	scan := newRuleScanner(doc.Evaluators)
	if err := validateEvaluators(scan.compiler); err != nil {
		return switchyard.Document{}, err
	}
	for _, key := range slices.Sorted(maps.Keys(doc.Flags)) {
		if f := doc.Flags[key]; f.Invalid == "" {
			if _, err := compileFlag(key, f, scan); err != nil {
				doc.Flags[key] = invalidFlag(err)
			}
		}
	}
	return doc, nil
}

// invalidFlag is the stand-in of a flag that failed validation with err.
func invalidFlag(err error) switchyard.Flag {
	var e *switchyard.Error
	if errors.As(err, &e) {
		return switchyard.Flag{Invalid: e.Message}
	}
	return switchyard.Flag{Invalid: err.Error()}
}

// parseDocument is ParseDocument; lenient keeps a flag whose definition
// is invalid as an invalid flag (invalidFlag) instead of failing.
func parseDocument(data []byte, lenient bool) (switchyard.Document, error) {
	if len(data) > MaxDocumentSize {
		return switchyard.Document{}, switchyard.Errorf(switchyard.CodeInvalidRequest, "the document is %d bytes; the limit is %d", len(data), MaxDocumentSize)
	}
	if err := scanDocument(data); err != nil {
		return switchyard.Document{}, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		return switchyard.Document{}, switchyard.Errorf(switchyard.CodeInvalidRequest, "the document must be a JSON object with \"flags\"")
	}
	var doc switchyard.Document
	if raw, ok := top["$schema"]; ok {
		if err := json.Unmarshal(raw, &doc.Schema); err != nil {
			return switchyard.Document{}, pathError("$schema", "must be a string")
		}
	}
	flags, ok := top["flags"]
	if !ok {
		return switchyard.Document{}, pathError("flags", "is required")
	}
	var err error
	if doc.Flags, err = parseFlags(flags, lenient); err != nil {
		return switchyard.Document{}, err
	}
	if raw, ok := top["$evaluators"]; ok {
		if doc.Evaluators, err = parseEvaluators(raw); err != nil {
			return switchyard.Document{}, err
		}
	}
	if raw, ok := top["metadata"]; ok {
		if doc.Metadata, err = parseMetadata(raw, "metadata", ""); err != nil {
			return switchyard.Document{}, err
		}
	}
	return doc, nil
}

func pathError(path, format string, args ...any) *switchyard.Error {
	return switchyard.Errorf(switchyard.CodeInvalidRequest, "%s: "+format, append([]any{path}, args...)...).With("path", path)
}

func parseFlags(raw json.RawMessage, lenient bool) (map[string]switchyard.Flag, error) {
	// add keeps a flag, or, when lenient, a flag that failed as invalid.
	add := func(flags map[string]switchyard.Flag, key string, f switchyard.Flag, err error) error {
		switch {
		case err == nil:
			flags[key] = f
		case lenient:
			flags[key] = invalidFlag(err)
		default:
			return err
		}
		return nil
	}
	switch firstByte(raw) {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, pathError("flags", "%v", err)
		}
		flags := make(map[string]switchyard.Flag, len(m))
		for _, key := range slices.Sorted(maps.Keys(m)) {
			if key == "" {
				return nil, pathError("flags", "a flag key must not be empty")
			}
			f, err := parseFlag(key, m[key], false)
			if err := add(flags, key, f, err); err != nil {
				return nil, err
			}
		}
		return flags, nil
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, pathError("flags", "%v", err)
		}
		flags := make(map[string]switchyard.Flag, len(list))
		for i, item := range list {
			var k struct {
				Key *string `json:"key"`
			}
			if firstByte(item) != '{' || json.Unmarshal(item, &k) != nil || k.Key == nil || *k.Key == "" {
				return nil, pathError(fmt.Sprintf("flags[%d]", i), "must be a flag object with a non-empty string \"key\"")
			}
			if _, dup := flags[*k.Key]; dup {
				return nil, pathError(fmt.Sprintf("flags[%d].key", i), "flag %q is defined twice", *k.Key)
			}
			f, err := parseFlag(*k.Key, item, true)
			if err := add(flags, *k.Key, f, err); err != nil {
				return nil, err
			}
		}
		return flags, nil
	}
	return nil, pathError("flags", "must be an object of flags")
}

func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// parseFlag parses one flag; keyed is set for the array form, whose flags
// carry their key.
func parseFlag(key string, raw json.RawMessage, keyed bool) (switchyard.Flag, error) {
	if firstByte(raw) != '{' {
		return switchyard.Flag{}, flagError(key, "flag", "must be an object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return switchyard.Flag{}, flagError(key, "flag", "%v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		switch name {
		case "state", "variants", "defaultVariant", "targeting", "metadata":
		case "key":
			if !keyed {
				return switchyard.Flag{}, flagError(key, name, "unknown field (a flag's key is its name in \"flags\")")
			}
		default:
			return switchyard.Flag{}, flagError(key, name, "unknown field; a flag has state, variants, defaultVariant, targeting and metadata")
		}
	}
	var f switchyard.Flag
	state, ok := fields["state"]
	if !ok {
		return switchyard.Flag{}, flagError(key, "state", "is required")
	}
	if err := json.Unmarshal(state, &f.State); err != nil || (f.State != switchyard.StateEnabled && f.State != switchyard.StateDisabled) {
		return switchyard.Flag{}, flagError(key, "state", "must be %q or %q", switchyard.StateEnabled, switchyard.StateDisabled)
	}
	variants, ok := fields["variants"]
	if !ok {
		return switchyard.Flag{}, flagError(key, "variants", "is required")
	}
	if firstByte(variants) != '{' || json.Unmarshal(variants, &f.Variants) != nil {
		return switchyard.Flag{}, flagError(key, "variants", "must be an object of variants")
	}
	if len(f.Variants) == 0 {
		return switchyard.Flag{}, flagError(key, "variants", "must define at least one variant")
	}
	for name := range f.Variants {
		if name == "" {
			return switchyard.Flag{}, flagError(key, "variants", "a variant name must not be empty")
		}
	}
	if err := checkVariantTypes(key, f.Variants); err != nil {
		return switchyard.Flag{}, err
	}
	if raw, ok := fields["defaultVariant"]; ok {
		if err := json.Unmarshal(raw, &f.DefaultVariant); err != nil {
			return switchyard.Flag{}, flagError(key, "defaultVariant", "must be a variant name or null")
		}
		if f.DefaultVariant != nil {
			if _, ok := f.Variants[*f.DefaultVariant]; !ok {
				return switchyard.Flag{}, flagError(key, "defaultVariant", "names no variant: %q", *f.DefaultVariant)
			}
		}
	}
	if raw, ok := fields["targeting"]; ok {
		if firstByte(raw) != '{' {
			return switchyard.Flag{}, flagError(key, "targeting", "must be a JsonLogic object")
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return switchyard.Flag{}, flagError(key, "targeting", "%v", err)
		}
		f.Targeting = b.Bytes()
	}
	if raw, ok := fields["metadata"]; ok {
		md, err := parseMetadata(raw, "metadata", key)
		if err != nil {
			return switchyard.Flag{}, err
		}
		f.Metadata = md
	}
	return f, nil
}

// parseMetadata parses flag or flag-set metadata: string, number and
// boolean values, as flagd's schema allows.
func parseMetadata(raw json.RawMessage, path, flag string) (map[string]any, error) {
	fail := func(p, format string, args ...any) error {
		if flag != "" {
			return flagError(flag, p, format, args...)
		}
		return pathError(p, format, args...)
	}
	var md map[string]any
	if firstByte(raw) != '{' || json.Unmarshal(raw, &md) != nil {
		return nil, fail(path, "must be an object")
	}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		switch md[k].(type) {
		case string, float64, bool:
		default:
			return nil, fail(path+"."+k, "must be a string, number or boolean")
		}
	}
	return md, nil
}

func parseEvaluators(raw json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if firstByte(raw) != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, pathError("$evaluators", "must be an object of named rules")
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if name == "" {
			return nil, pathError("$evaluators", "an evaluator name must not be empty")
		}
		if firstByte(m[name]) != '{' {
			return nil, pathError("$evaluators."+name, "must be a JsonLogic object")
		}
		var b bytes.Buffer
		if err := json.Compact(&b, m[name]); err != nil {
			return nil, pathError("$evaluators."+name, "%v", err)
		}
		m[name] = b.Bytes()
	}
	return m, nil
}

// scanDocument checks the document's syntax token by token, so that a
// syntax error, a duplicate key or excessive nesting is reported at its
// path (flag "x": targeting.if[1]: ...).
func scanDocument(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) > 0 {
				return locate(stack, "the document ends inside a value")
			}
			return nil
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return locate(stack, "invalid JSON at byte %d: %v", se.Offset, se)
			}
			return locate(stack, "invalid JSON at byte %d: %v", dec.InputOffset(), err)
		}
		if len(stack) == 0 && tok != json.Delim('{') {
			return switchyard.Errorf(switchyard.CodeInvalidRequest, "the document must be a JSON object with \"flags\"")
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				if err := afterValue(stack, dec); err != nil {
					return err
				}
				continue
			}
			top := &stack[n-1]
			top.key, top.wantKey = tok.(string), false
			if _, dup := top.seen[top.key]; dup {
				return locate(stack, "duplicate key %q", top.key)
			}
			top.seen[top.key] = struct{}{}
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= MaxDocumentDepth {
				return locate(stack, "nested deeper than %d levels", MaxDocumentDepth)
			}
			f := frame{object: tok == json.Delim('{')}
			f.wantKey = f.object
			if f.object {
				f.seen = map[string]struct{}{}
			}
			stack = append(stack, f)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			if err := afterValue(stack, dec); err != nil {
				return err
			}
		default:
			if err := afterValue(stack, dec); err != nil {
				return err
			}
		}
	}
}

// frame is one open object or array of the scan.
type frame struct {
	object  bool
	wantKey bool
	key     string
	index   int
	seen    map[string]struct{}
}

// afterValue records that the current container received a value; after
// the top-level value nothing but white space may follow.
func afterValue(stack []frame, dec *json.Decoder) error {
	if len(stack) == 0 {
		if _, err := dec.Token(); err != io.EOF {
			return switchyard.Errorf(switchyard.CodeInvalidRequest, "unexpected data after the document at byte %d", dec.InputOffset())
		}
		return nil
	}
	top := &stack[len(stack)-1]
	if top.object {
		top.wantKey = true
	} else {
		top.index++
	}
	return nil
}

// locate builds the error for a problem at the scan's current path,
// naming the flag when the path is inside one.
func locate(stack []frame, format string, args ...any) error {
	var parts []string
	for i, f := range stack {
		switch {
		case f.object && f.key != "" && !(f.wantKey && i == len(stack)-1):
			parts = append(parts, f.key)
		case !f.object:
			parts = append(parts, "["+strconv.Itoa(f.index)+"]")
		}
	}
	if len(parts) >= 2 && parts[0] == "flags" && !strings.HasPrefix(parts[1], "[") {
		return flagError(parts[1], joinPath(parts[2:], "flag"), format, args...)
	}
	if len(parts) == 0 {
		return switchyard.Errorf(switchyard.CodeInvalidRequest, format, args...)
	}
	return pathError(joinPath(parts, ""), format, args...)
}

func joinPath(parts []string, empty string) string {
	if len(parts) == 0 {
		return empty
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

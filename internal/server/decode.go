package server

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/switchyard-dev/switchyard"
)

// decodeStrict reads exactly one JSON object from r into v. Unknown fields,
// wrong types and trailing data are INVALID_REQUEST errors, and a body over
// the limit BODY_TOO_LARGE, whose message says what to fix, so a typo never
// passes as a default.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return bodyError(err)
		}
		return switchyard.Errorf(switchyard.CodeInvalidRequest, "unexpected data after the JSON object; send exactly one object")
	}
	return nil
}

// requireJSON refuses a request body that is not declared as JSON, so a
// form or a text body never passes for a change: it must come with
// Content-Type application/json, whose optional charset may only be
// UTF-8, the one encoding JSON has. A request without a body passes, for
// the decoder to refuse as empty.
func requireJSON(r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	media, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && media == "application/json" {
		if charset, ok := params["charset"]; !ok || strings.EqualFold(charset, "utf-8") {
			return nil
		}
	}
	// The header is not echoed: a caller chooses it, and refusals are
	// recorded.
	return switchyard.Errorf(switchyard.CodeUnsupportedMediaType,
		"the request body must be JSON, sent with Content-Type: application/json (a charset, if any, must be utf-8)").With("field", "Content-Type")
}

// bodyError explains a failure to decode a request body.
func bodyError(err error) *switchyard.Error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		e        *switchyard.Error
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &tooLarge):
		return switchyard.Errorf(switchyard.CodeBodyTooLarge, "the request body is larger than the limit of %d bytes", tooLarge.Limit).
			With("max_body_bytes", tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return switchyard.Errorf(switchyard.CodeInvalidRequest, "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return switchyard.Errorf(switchyard.CodeInvalidRequest, "the request body is not valid JSON: it ends too early")
	case errors.As(err, &syntax):
		return switchyard.Errorf(switchyard.CodeInvalidRequest, "the request body is not valid JSON: %s (at byte %d)", syntax, syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return switchyard.Errorf(switchyard.CodeInvalidRequest, "the request body must be a JSON object, not %s", typ.Value)
		}
		return switchyard.Errorf(switchyard.CodeInvalidRequest, "field %q must be %s, not %s", typ.Field, jsonType(typ.Type.Kind().String()), typ.Value).
			With("field", typ.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return switchyard.Errorf(switchyard.CodeInvalidRequest, "unknown field %q; check the spelling against the API reference", field).
			With("field", field)
	}
	return switchyard.Errorf(switchyard.CodeInvalidRequest, "the request body could not be read: %v", err)
}

// jsonType names a Go kind as the JSON type a client should send.
func jsonType(kind string) string {
	switch kind {
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	if strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint") || strings.HasPrefix(kind, "float") {
		return "a number"
	}
	return "a " + kind
}

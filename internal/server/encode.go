package server

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard/evaluator"
)

// The OFREP answers are written by hand: evaluation is the hot path, and
// appending into a pooled buffer costs a fraction of encoding/json's
// reflection. The output is the JSON encoding/json would write, with
// object keys in sorted order, so equal answers are equal bytes (the bulk
// ETag hashes them).

// appendSuccess appends an OFREP evaluation success. A result without a
// value (a disabled flag, no default variant) omits value, which tells the
// client to use its code default.
func appendSuccess(b []byte, r evaluator.Result) ([]byte, error) { return appendAnswer(b, r, "") }

// appendResult appends r as a bulk evaluation lists it, a success or a
// failure, leaving out the metadata key omit when it is set.
func appendResult(b []byte, r evaluator.Result, omit string) ([]byte, error) {
	if r.ErrorCode != "" {
		return appendFailure(b, r.Key, r.ErrorCode, r.ErrorMessage), nil
	}
	return appendAnswer(b, r, omit)
}

// appendAnswer is appendSuccess leaving out the metadata key omit.
func appendAnswer(b []byte, r evaluator.Result, omit string) ([]byte, error) {
	b = append(b, `{"key":`...)
	b = appendString(b, r.Key)
	if r.Value != nil {
		b = append(b, `,"value":`...)
		var err error
		if b, err = appendValue(b, r.Value); err != nil {
			return nil, fmt.Errorf("encode the value of flag %q: %w", r.Key, err)
		}
	}
	b = append(b, `,"reason":`...)
	b = appendString(b, string(r.Reason))
	if r.Variant != "" {
		b = append(b, `,"variant":`...)
		b = appendString(b, r.Variant)
	}
	if len(r.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		var err error
		if b, err = appendMetadata(b, r.Metadata, omit); err != nil {
			return nil, fmt.Errorf("encode the metadata of flag %q: %w", r.Key, err)
		}
	}
	return append(b, '}'), nil
}

// appendFailure appends an OFREP evaluation failure.
func appendFailure(b []byte, key string, code evaluator.ResolutionError, details string) []byte {
	b = append(b, `{"key":`...)
	b = appendString(b, key)
	b = append(b, `,"errorCode":`...)
	b = appendString(b, string(code))
	if details != "" {
		b = append(b, `,"errorDetails":`...)
		b = appendString(b, details)
	}
	return append(b, '}')
}

// appendMetadata appends flag metadata with its keys sorted, but omit.
// Flags carry a handful of metadata keys, which are sorted in a stack
// array.
func appendMetadata(b []byte, md map[string]any, omit string) ([]byte, error) {
	var stack [8]string
	keys := stack[:0]
	for k := range md {
		if k != omit || omit == "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, md[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendValue appends a flag value: the scalar types by hand, objects and
// arrays (rare, and already sorted by encoding/json) through encoding/json.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return appendBool(b, v), nil
	case string:
		return appendString(b, v), nil
	case int64:
		return appendInt(b, v), nil
	case int:
		return appendInt(b, int64(v)), nil
	case float64:
		return appendFloat(b, v)
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// appendFloat formats a number as encoding/json does: plain notation, or an
// exponent for very small and very large magnitudes.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%v is not a JSON number", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON requires
// plus <, >, & and the line separators, as encoding/json does, and
// replacing invalid UTF-8 with U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Package importer converts flag definitions from flagd, LaunchDarkly,
// Unleash and GO Feature Flag into a flagd document, so a team can move its
// flags to Switchyard and keep serving every user the same variant. What an
// importer cannot convert exactly is listed in the result's report, flag by
// flag: nothing is dropped silently.
package importer

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
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// The formats Import accepts.
const (
	FormatFlagd         = "flagd"
	FormatLaunchDarkly  = "launchdarkly"
	FormatUnleash       = "unleash"
	FormatGoFeatureFlag = "gofeatureflag"
)

// Formats lists the accepted formats in the order a help text shows them.
var Formats = []string{FormatFlagd, FormatLaunchDarkly, FormatUnleash, FormatGoFeatureFlag}

// MaxSize is the largest file Import reads. Real flag files are far smaller;
// the limit keeps a mistaken or hostile upload from exhausting memory.
const MaxSize = 10 << 20

// maxDepth bounds how deeply a file may nest objects and arrays. Realistic
// files nest a few levels (a JsonLogic rule a dozen at most); the bound keeps
// the recursive converters and the evaluator's compiler on a short stack.
const maxDepth = 64

// Options tune an import.
type Options struct {
	// Environment selects the environment of a LaunchDarkly or Unleash file
	// that holds several. It may be empty when the file holds only one.
	Environment string
	// SkipInvalid imports the flags of a flagd file that are valid and
	// reports each one that is not ("not imported: ..."), instead of
	// refusing the file, as flagd serves the rest of such a file.
	SkipInvalid bool
}

// Severity says how far a converted flag departs from its source.
type Severity string

// The severities of a report note.
const (
	// SeverityUnsupported: part of the flag could not be converted; the note
	// says what the imported flag does instead.
	SeverityUnsupported Severity = "unsupported"
	// SeverityChanged: the part was converted, but some users or contexts
	// may see a different result than the vendor would give them.
	SeverityChanged Severity = "changed"
)

// Note is one entry of an import report: a flag, the path inside its source
// definition, and what happened there.
type Note struct {
	Flag     string   `json:"flag"`
	Path     string   `json:"path"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// Result is a converted file: the flagd document to store and the report of
// everything that was not converted exactly. An empty report means every
// flag evaluates as its vendor would evaluate it.
type Result struct {
	Document switchyard.Document `json:"document"`
	Report   []Note              `json:"report"`
}

// Import converts content, a file in the given format, to a flagd document.
// Malformed input fails with an *switchyard.Error (CodeInvalidRequest) naming
// the flag and the path inside it; nothing is partially converted.
func Import(format string, content []byte, opts Options) (Result, error) {
	if len(content) > MaxSize {
		return Result{}, fileError("", "the file is %d bytes; the limit is %d", len(content), MaxSize)
	}
	if len(bytes.TrimSpace(content)) == 0 {
		return Result{}, fileError("", "the file is empty")
	}
	var (
		c   = &converted{flags: map[string]switchyard.Flag{}}
		err error
	)
	switch format {
	case FormatFlagd:
		err = importFlagd(content, opts.SkipInvalid, c)
	case FormatLaunchDarkly:
		err = importLaunchDarkly(content, opts, c)
	case FormatUnleash:
		err = importUnleash(content, opts, c)
	case FormatGoFeatureFlag:
		err = importGoFeatureFlag(content, c)
	default:
		return Result{}, switchyard.Errorf(switchyard.CodeInvalidRequest,
			"unknown import format %q: use one of %s", format, strings.Join(Formats, ", ")).With("format", format)
	}
	if err != nil {
		return Result{}, err
	}
	if len(c.flags) == 0 {
		return Result{}, fileError("", "the file defines no flag that can be imported")
	}
	// Validate what was converted as the server will: a rule the evaluator
	// refuses is refused here, before anything is stored.
	check := switchyard.InitialRevision(time.Time{})
	check.Flags, check.Evaluators = c.flags, c.doc.Evaluators
	if err := evaluator.Validate(check); err != nil {
		return Result{}, err
	}
	// And the document must read back as flagd JSON, since that is what
	// export writes.
	exported, err := json.Marshal(switchyard.Document{Flags: c.flags, Evaluators: c.doc.Evaluators, Metadata: c.doc.Metadata})
	if err != nil {
		return Result{}, fmt.Errorf("encode the imported document: %w", err)
	}
	if _, err := evaluator.ParseDocument(exported); err != nil {
		return Result{}, err
	}
	slices.SortStableFunc(c.notes, func(a, b Note) int { return strings.Compare(a.Flag, b.Flag) })
	doc := c.doc
	doc.Schema = switchyard.FlagdSchema
	doc.Flags = c.flags
	if c.notes == nil {
		c.notes = []Note{}
	}
	return Result{Document: doc, Report: c.notes}, nil
}

// converted collects an importer's output.
type converted struct {
	doc   switchyard.Document
	flags map[string]switchyard.Flag
	notes []Note
}

func (c *converted) note(flag, path string, sev Severity, format string, args ...any) {
	c.notes = append(c.notes, Note{Flag: flag, Path: path, Severity: sev, Message: fmt.Sprintf(format, args...)})
}

// add stores a converted flag. A key Switchyard cannot hold is reported and
// skipped, never renamed: a renamed flag would silently miss every caller.
func (c *converted) add(key, path string, f switchyard.Flag) error {
	if err := switchyard.ValidateFlagKey(key); err != nil {
		var e *switchyard.Error
		msg := err.Error()
		if errors.As(err, &e) {
			msg = e.Message
		}
		c.note(key, path, SeverityUnsupported, "not imported: %s", msg)
		return nil
	}
	if _, dup := c.flags[key]; dup {
		return flagError(key, path, "the file defines this flag twice")
	}
	c.flags[key] = f
	return nil
}

// flagError is the error for bad input inside one flag's definition.
func flagError(flag, path, format string, args ...any) *switchyard.Error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return switchyard.Errorf(switchyard.CodeInvalidRequest, "flag %q: %s", flag, msg).With("flag", flag).With("path", path)
}

// fileError is the error for bad input outside any flag.
func fileError(path, format string, args ...any) *switchyard.Error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	e := switchyard.Errorf(switchyard.CodeInvalidRequest, "%s", msg)
	if path != "" {
		e = e.With("path", path)
	}
	return e
}

// decodeError turns an encoding/json failure into a message naming the
// field, so "wrong types" errors point at the offending spot.
func decodeError(flag, path string, err error) *switchyard.Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := joinPath(path, te.Field)
		msg := fmt.Sprintf("expected %s, found %s", describeType(te.Type.String()), te.Value)
		if flag == "" {
			return fileError(field, "%s", msg)
		}
		return flagError(flag, field, "%s", msg)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fileError(path, "malformed JSON at byte %d: %s", se.Offset, se)
	}
	if flag == "" {
		return fileError(path, "%s", err)
	}
	return flagError(flag, path, "%s", err)
}

func describeType(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "float"), strings.HasPrefix(goType, "uint"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map"), strings.HasPrefix(goType, "struct"), strings.Contains(goType, "."):
		return "an object"
	}
	return goType
}

func joinPath(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "." + b
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// checkDepth rejects JSON nested deeper than maxDepth, naming the path where
// it happens, before anything recursive touches it.
func checkDepth(flag, path string, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		path  string
		array bool
		n     int
		key   bool // an object frame expecting a key next
	}
	var stack []frame
	cur := path
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return decodeError(flag, path, err)
		}
		// Work out the path of the value this token starts.
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.array {
				if d, ok := tok.(json.Delim); !ok || d != ']' {
					cur = index(top.path, top.n)
					top.n++
				}
			} else if top.key {
				if k, ok := tok.(string); ok {
					cur = joinPath(top.path, k)
					top.key = false
					continue
				}
			} else {
				top.key = true
			}
		}
		d, ok := tok.(json.Delim)
		if !ok {
			continue
		}
		switch d {
		case '{', '[':
			if len(stack) >= maxDepth {
				if flag == "" {
					return fileError(cur, "nested deeper than %d levels", maxDepth)
				}
				return flagError(flag, cur, "nested deeper than %d levels", maxDepth)
			}
			stack = append(stack, frame{path: cur, array: d == '[', key: d == '{'})
		case '}', ']':
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && !stack[len(stack)-1].array {
				stack[len(stack)-1].key = true
			}
		}
	}
}

// sortedKeys returns a map's keys in order, so output and reports are
// deterministic.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

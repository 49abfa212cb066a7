package evaluator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/switchyard-dev/switchyard"
)

// conformanceDir returns the flagd-testbed data: $SWITCHYARD_CONFORMANCE_DIR,
// or ../shared/conformance next to the module root. The data is never
// copied into the repository.
func conformanceDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SWITCHYARD_CONFORMANCE_DIR")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Skipf("conformance data not found: %v", err)
		}
		dir = filepath.Join(root, "..", "shared", "conformance")
	}
	if _, err := os.Stat(filepath.Join(dir, "flagd-testbed")); err != nil {
		t.Skipf("conformance data not found at %s (set SWITCHYARD_CONFORMANCE_DIR): %v", dir, err)
	}
	return dir
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// loadTestkit loads the evaluator suite's flags as a flagd document into a
// revision and compiles it, the path the server takes. The revision is
// built directly rather than through ImportFlags: the testkit deliberately
// holds a flag whose $ref names no evaluator, which Validate refuses and
// whose evaluation must give PARSE_ERROR.
func loadTestkit(t *testing.T, dir string) (*FlagSet, *switchyard.Revision) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "flagd-testbed", "evaluator", "flags", "testkit-flags.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ParseDocument(data)
	if err != nil {
		t.Fatalf("parse testkit-flags.json: %v", err)
	}
	r := switchyard.InitialRevision(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r.Flags, r.Evaluators, r.Metadata = doc.Flags, doc.Evaluators, doc.Metadata
	fs, err := Compile(r, "")
	if err != nil {
		t.Fatalf("compile testkit-flags.json: %v", err)
	}
	return fs, r
}

// TestFlagdEvaluatorConformance runs every scenario of the flagd-testbed
// evaluator suite (with flagd's current fractional bucketing, v2) against
// Compile, FlagSet.Evaluate and Result.As.
func TestFlagdEvaluatorConformance(t *testing.T) {
	dir := conformanceDir(t)
	fs, r := loadTestkit(t, dir)
	var passed, failed atomic.Int64
	var report bytes.Buffer
	suite := godog.TestSuite{
		Name: "flagd-evaluator",
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			s := &scenario{fs: fs, revision: r.Number}
			s.register(sc)
			sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
				if err == nil {
					passed.Add(1)
				} else {
					failed.Add(1)
				}
				return ctx, err
			})
		},
		Options: &godog.Options{
			Format:   "progress",
			Output:   &report,
			NoColors: true,
			Paths:    []string{filepath.Join(dir, "flagd-testbed", "evaluator", "gherkin")},
			Tags:     "~@fractional-v1&&~@fractional-v3",
			Strict:   true,
			TestingT: t,
		},
	}
	status := suite.Run()
	t.Logf("godog report:\n%s", report.String())
	t.Logf("%d scenarios passed, %d failed", passed.Load(), failed.Load())
	if status != 0 || failed.Load() > 0 || passed.Load() == 0 {
		t.Fatalf("flagd evaluator conformance failed (status %d)", status)
	}
}

// scenario is the state of one conformance scenario.
type scenario struct {
	fs       *FlagSet
	revision int64
	typ      Type
	key      string
	fallback any
	ctx      map[string]any
	result   Result
	value    any
}

func (s *scenario) register(sc *godog.ScenarioContext) {
	sc.Step(`^an evaluator$`, func() error { return nil })
	sc.Step(`^a ([A-Za-z]+)-flag with key "([^"]*)" and a fallback value "(.*)"$`, s.flag)
	sc.Step(`^a context containing a key "([^"]*)", with type "([^"]*)" and with value "(.*)"$`, s.contextKey)
	sc.Step(`^a context containing a nested property with outer key "([^"]*)" and inner key "([^"]*)", with value "(.*)"$`, s.nested)
	sc.Step(`^a context containing a targeting key with value "(.*)"$`, s.targetingKey)
	sc.Step(`^the flag was evaluated with details$`, s.evaluate)
	sc.Step(`^the resolved details value should be "(.*)"$`, s.valueShouldBe)
	sc.Step(`^the reason should be "([^"]*)"$`, s.reasonShouldBe)
	sc.Step(`^the error-code should be "([^"]*)"$`, s.errorCodeShouldBe)
	sc.Step(`^the resolved metadata should contain$`, s.metadataShouldContain)
	sc.Step(`^the resolved metadata is empty$`, s.metadataShouldBeEmpty)
}

var gherkinTypes = map[string]Type{
	"Boolean": TypeBoolean, "String": TypeString, "Integer": TypeInteger, "Float": TypeFloat, "Object": TypeObject,
}

// parseTyped reads a value of a Gherkin type name from its text.
func parseTyped(typeName, text string) (any, error) {
	switch typeName {
	case "Boolean":
		return strconv.ParseBool(text)
	case "String":
		return text, nil
	case "Integer":
		return strconv.ParseInt(text, 10, 64)
	case "Float":
		return strconv.ParseFloat(text, 64)
	case "Object":
		var v map[string]any
		err := json.Unmarshal([]byte(strings.ReplaceAll(text, `\"`, `"`)), &v)
		return v, err
	}
	return nil, fmt.Errorf("unknown type %q", typeName)
}

func (s *scenario) flag(typeName, key, fallback string) error {
	t, ok := gherkinTypes[typeName]
	if !ok {
		return fmt.Errorf("unknown flag type %q", typeName)
	}
	v, err := parseTyped(typeName, fallback)
	if err != nil {
		return err
	}
	s.typ, s.key, s.fallback = t, key, v
	return nil
}

func (s *scenario) setContext(key string, v any) {
	if s.ctx == nil {
		s.ctx = map[string]any{}
	}
	s.ctx[key] = v
}

func (s *scenario) contextKey(key, typeName, text string) error {
	v, err := parseTyped(typeName, text)
	if err != nil {
		return err
	}
	s.setContext(key, v)
	return nil
}

func (s *scenario) nested(outer, inner, text string) error {
	s.setContext(outer, map[string]any{inner: text})
	return nil
}

func (s *scenario) targetingKey(text string) error {
	s.setContext("targetingKey", text)
	return nil
}

// evaluate resolves the flag as an OpenFeature provider over Switchyard
// does: the caller's default stands in when the result carries no value.
func (s *scenario) evaluate() error {
	s.result = s.fs.Evaluate(s.key, s.ctx).As(s.typ)
	s.value = s.result.Value
	if s.value == nil {
		s.value = s.fallback
	}
	return nil
}

func (s *scenario) valueShouldBe(text string) error {
	typeName := s.typ.String()
	want, err := parseTyped(strings.ToUpper(typeName[:1])+typeName[1:], text)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(s.value, want) {
		return fmt.Errorf("value %#v, want %#v (result %+v)", s.value, want, s.result)
	}
	return nil
}

func (s *scenario) reasonShouldBe(want string) error {
	if string(s.result.Reason) != want {
		return fmt.Errorf("reason %q, want %q (result %+v)", s.result.Reason, want, s.result)
	}
	return nil
}

func (s *scenario) errorCodeShouldBe(want string) error {
	if string(s.result.ErrorCode) != want {
		return fmt.Errorf("error code %q, want %q (result %+v)", s.result.ErrorCode, want, s.result)
	}
	return nil
}

// flagMetadata returns the result's metadata without the two entries
// Switchyard adds to every flag (design §2: the revision served and
// whether the session is pinned), after checking them.
func (s *scenario) flagMetadata() (map[string]any, error) {
	md := make(map[string]any, len(s.result.Metadata))
	for k, v := range s.result.Metadata {
		md[k] = v
	}
	if md[MetadataRevision] != s.revision || md[metadataPinned] != false {
		return nil, fmt.Errorf("metadata %v: want revision %d and pinned false", md, s.revision)
	}
	delete(md, MetadataRevision)
	delete(md, metadataPinned)
	return md, nil
}

func (s *scenario) metadataShouldContain(table *godog.Table) error {
	md, err := s.flagMetadata()
	if err != nil {
		return err
	}
	for _, row := range table.Rows[1:] {
		key, typeName, text := row.Cells[0].Value, row.Cells[1].Value, row.Cells[2].Value
		want, err := parseTyped(typeName, text)
		if err != nil {
			return err
		}
		got := md[key]
		if f, ok := got.(float64); ok && typeName == "Integer" && f == float64(int64(f)) {
			got = int64(f)
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("metadata %q is %#v, want %#v", key, md[key], want)
		}
	}
	return nil
}

func (s *scenario) metadataShouldBeEmpty() error {
	md, err := s.flagMetadata()
	if err != nil {
		return err
	}
	if len(md) != 0 {
		return fmt.Errorf("metadata %v, want none", md)
	}
	return nil
}

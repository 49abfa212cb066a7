package provider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// conformanceDir returns the flagd-testbed data, as the evaluator's
// conformance test finds it: $SWITCHYARD_CONFORMANCE_DIR, or
// ../shared/conformance next to the module root. The data is never copied
// into the repository.
func conformanceDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SWITCHYARD_CONFORMANCE_DIR")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Skipf("conformance data not found: %v", err)
		}
		// The test runs in provider/, one below the module root.
		dir = filepath.Join(wd, "..", "..", "shared", "conformance")
	}
	if _, err := os.Stat(filepath.Join(dir, "flagd-testbed")); err != nil {
		t.Skipf("conformance data not found at %s (set SWITCHYARD_CONFORMANCE_DIR): %v", dir, err)
	}
	return dir
}

// TestFlagdEvaluatorConformanceThroughProvider runs the flagd-testbed
// evaluator suite end to end, in both modes: the testkit is the server's
// revision, and every scenario evaluates through the OpenFeature SDK
// client, so typed values, reasons, error codes and metadata are what an
// application sees.
func TestFlagdEvaluatorConformanceThroughProvider(t *testing.T) {
	dir := conformanceDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "flagd-testbed", "evaluator", "flags", "testkit-flags.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := evaluator.ParseDocument(data)
	if err != nil {
		t.Fatal(err)
	}
	rev := switchyard.InitialRevision(time.Now())
	rev.Flags, rev.Evaluators, rev.Metadata = doc.Flags, doc.Evaluators, doc.Metadata
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			_, c := newClient(t, newTestServer(t, memory.New(rev)), provider.WithMode(m.mode))
			suite := godog.TestSuite{
				Name: "flagd-evaluator-" + m.name,
				ScenarioInitializer: func(sc *godog.ScenarioContext) {
					s := &scenario{client: c}
					s.register(sc)
				},
				Options: &godog.Options{
					Format:   "progress",
					Output:   &strings.Builder{},
					NoColors: true,
					Paths:    []string{filepath.Join(dir, "flagd-testbed", "evaluator", "gherkin")},
					Tags:     "~@fractional-v1&&~@fractional-v3",
					Strict:   true,
					TestingT: t,
				},
			}
			if status := suite.Run(); status != 0 {
				t.Fatalf("flagd evaluator conformance through the %s provider failed (status %d)", m.name, status)
			}
		})
	}
}

// scenario is the state of one conformance scenario.
type scenario struct {
	client   *openfeature.Client
	typ      string
	key      string
	fallback any
	attrs    map[string]any
	target   string
	value    any
	details  openfeature.EvaluationDetails
}

func (s *scenario) register(sc *godog.ScenarioContext) {
	sc.Step(`^an evaluator$`, func() error { return nil })
	sc.Step(`^a ([A-Za-z]+)-flag with key "([^"]*)" and a fallback value "(.*)"$`, s.flag)
	sc.Step(`^a context containing a nested property with outer key "([^"]*)" and inner key "([^"]*)", with value "(.*)"$`, s.nested)
	sc.Step(`^a context containing a targeting key with value "(.*)"$`, func(v string) error { s.target = v; return nil })
	s.registerShared(sc)
}

// registerShared registers the steps the evaluator suite and flagd's
// provider suites word alike: context attributes, the evaluation and what
// is checked of its result.
func (s *scenario) registerShared(sc *godog.ScenarioContext) {
	sc.Step(`^a context containing a key "([^"]*)", with type "([^"]*)" and with value "(.*)"$`, s.contextKey)
	sc.Step(`^the flag was evaluated with details$`, s.evaluate)
	sc.Step(`^the resolved details value should be "(.*)"$`, s.valueShouldBe)
	sc.Step(`^the reason should be "([^"]*)"$`, func(want string) error {
		return s.check(string(s.details.Reason) == want, "reason %q, want %q", s.details.Reason, want)
	})
	sc.Step(`^the error-code should be "([^"]*)"$`, func(want string) error {
		return s.check(string(s.details.ErrorCode) == want, "error code %q, want %q", s.details.ErrorCode, want)
	})
	sc.Step(`^the resolved metadata should contain$`, s.metadataShouldContain)
	sc.Step(`^the resolved metadata is empty$`, func() error {
		md := s.flagMetadata()
		return s.check(len(md) == 0, "metadata %v, want none", md)
	})
}

func (s *scenario) check(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format+" (details %+v)", append(args, s.details)...)
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
	v, err := parseTyped(typeName, fallback)
	if err != nil {
		return err
	}
	s.typ, s.key, s.fallback = typeName, key, v
	return nil
}

func (s *scenario) setAttr(key string, v any) {
	if s.attrs == nil {
		s.attrs = map[string]any{}
	}
	s.attrs[key] = v
}

func (s *scenario) contextKey(key, typeName, text string) error {
	v, err := parseTyped(typeName, text)
	if err != nil {
		return err
	}
	s.setAttr(key, v)
	return nil
}

func (s *scenario) nested(outer, inner, text string) error {
	s.setAttr(outer, map[string]any{inner: text})
	return nil
}

// evaluate resolves the flag through the SDK client with the typed call
// an application would make.
func (s *scenario) evaluate() error {
	ctx := context.Background()
	ec := openfeature.NewEvaluationContext(s.target, s.attrs)
	switch s.typ {
	case "Boolean":
		d, _ := s.client.BooleanValueDetails(ctx, s.key, s.fallback.(bool), ec)
		s.value, s.details = d.Value, d.EvaluationDetails
	case "String":
		d, _ := s.client.StringValueDetails(ctx, s.key, s.fallback.(string), ec)
		s.value, s.details = d.Value, d.EvaluationDetails
	case "Integer":
		d, _ := s.client.IntValueDetails(ctx, s.key, s.fallback.(int64), ec)
		s.value, s.details = d.Value, d.EvaluationDetails
	case "Float":
		d, _ := s.client.FloatValueDetails(ctx, s.key, s.fallback.(float64), ec)
		s.value, s.details = d.Value, d.EvaluationDetails
	default:
		d, _ := s.client.ObjectValueDetails(ctx, s.key, s.fallback, ec)
		s.value, s.details = d.Value, d.EvaluationDetails
	}
	return nil
}

func (s *scenario) valueShouldBe(text string) error {
	want, err := parseTyped(s.typ, text)
	if err != nil {
		return err
	}
	return s.check(reflect.DeepEqual(s.value, want), "value %#v, want %#v", s.value, want)
}

// flagMetadata returns the metadata without the two entries Switchyard
// adds to every flag (revision, pinned).
func (s *scenario) flagMetadata() map[string]any {
	md := map[string]any{}
	for k, v := range s.details.FlagMetadata {
		if k != "revision" && k != "pinned" {
			md[k] = v
		}
	}
	return md
}

// metadataShouldContain checks each entry with its exact type: integral
// numbers must arrive as int64.
func (s *scenario) metadataShouldContain(table *godog.Table) error {
	md := s.flagMetadata()
	for _, row := range table.Rows[1:] {
		key, typeName, text := row.Cells[0].Value, row.Cells[1].Value, row.Cells[2].Value
		want, err := parseTyped(typeName, text)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(md[key], want) {
			return s.check(false, "metadata %q is %#v, want %#v", key, md[key], want)
		}
	}
	return nil
}

package evaluator

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
)

func TestChangedFlags(t *testing.T) {
	base := switchyard.InitialRevision(time.Unix(0, 0))
	on := "on"
	base.Flags = map[string]switchyard.Flag{
		"checkout": {State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &on},
		"banner": {State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &on,
			Targeting: json.RawMessage(`{"$ref":"staff"}`)},
	}
	base.Evaluators = map[string]json.RawMessage{"staff": json.RawMessage(`{"if":[true,"on","off"]}`)}
	v0, off := "v0", false
	tests := []struct {
		name   string
		change func(r *switchyard.Revision)
		want   []string
	}{
		{"nothing", func(*switchyard.Revision) {}, nil},
		{"exam mode", func(r *switchyard.Revision) { r.System.ExamMode = true }, []string{"EXAM_MODE"}},
		{"override version", func(r *switchyard.Revision) { r.Overrides["search"] = switchyard.Override{Version: &v0} },
			[]string{"module.search"}},
		{"override disables", func(r *switchyard.Revision) { r.Overrides["neo4j"] = switchyard.Override{Enabled: &off} },
			[]string{"module.neo4j", "module.neo4j.enabled"}},
		{"flag added and removed", func(r *switchyard.Revision) {
			r.Flags = map[string]switchyard.Flag{"banner": r.Flags["banner"], "new": r.Flags["checkout"]}
		}, []string{"checkout", "new"}},
		{"flag metadata", func(r *switchyard.Revision) {
			f := r.Flags["checkout"]
			f.Metadata = map[string]any{"owner": "payments"}
			r.Flags = map[string]switchyard.Flag{"banner": r.Flags["banner"], "checkout": f}
		}, []string{"checkout"}},
		{"shared evaluator: the flags reading it", func(r *switchyard.Revision) {
			r.Evaluators = map[string]json.RawMessage{"staff": json.RawMessage(`{"if":[false,"on","off"]}`)}
		}, []string{"banner"}},
		{"shared evaluator no flag reads", func(r *switchyard.Revision) {
			r.Evaluators = map[string]json.RawMessage{"staff": r.Evaluators["staff"], "other": json.RawMessage(`{"if":[false,"on","off"]}`)}
		}, nil},
		{"flag-set metadata: every flag", func(r *switchyard.Revision) { r.Metadata = map[string]any{"env": "prod"} }, nil},
		{"empty metadata is no metadata", func(r *switchyard.Revision) { r.Metadata = map[string]any{} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base.Clone()
			next.Number++
			tt.change(next)
			want := tt.want
			if tt.name == "flag-set metadata: every flag" {
				fs, err := Compile(next, "demo")
				if err != nil {
					t.Fatal(err)
				}
				want = fs.Keys()
			}
			if got := ChangedFlags(base, next, "demo"); !slices.Equal(got, want) {
				t.Fatalf("changed = %v, want %v", got, want)
			}
		})
	}
	fs, err := Compile(base, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if got := ChangedFlags(nil, base, "demo"); !slices.Equal(got, fs.Keys()) {
		t.Fatalf("from nothing: changed = %v, want every key %v", got, fs.Keys())
	}
}

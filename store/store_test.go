package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// Next refuses a change based on another revision with the error a client
// sees (code, message and the current revision to rebase on), refuses what
// the mutation refuses and a revision whose changed flags do not compile,
// gives up on a compilation when the caller's context ends, and otherwise
// returns the next revision. It judges what the change touches: a flag
// stored before (here one that a stricter version would refuse) does not
// hold up a toggle, but a change to an evaluator it reads judges it again.
func TestNext(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cur := switchyard.InitialRevision(now)
	cur.Number = 3
	cur.Evaluators = map[string]json.RawMessage{"staff": json.RawMessage(`{"ends_with": [{"var": "email"}, "@example.com"]}`)}
	cur.Flags = map[string]switchyard.Flag{"legacy": {State: switchyard.StateEnabled, Variants: map[string]any{"on": true},
		Targeting: []byte(`{"and": [{"$ref": "staff"}, {"regex": [{"var": "email"}, ".*"]}]}`)}}
	bad := "v9"
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	flag := func(targeting string) map[string]switchyard.Flag {
		return map[string]switchyard.Flag{"checkout": {State: switchyard.StateEnabled, Variants: map[string]any{"on": true},
			Targeting: []byte(targeting)}}
	}
	tests := []struct {
		name   string
		change store.Change
		ctx    context.Context
		// want is the refusal; nil when the change makes revision 4.
		want *switchyard.Error
	}{
		{name: "any revision", change: store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}},
		{name: "the current revision", change: store.Change{Expected: 3, Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}},
		{name: "a stale revision", change: store.Change{Expected: 2, Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)},
			want: &switchyard.Error{Code: switchyard.CodeRevisionConflict,
				Message: "the change was based on revision 2 but the current revision is 3",
				Fields:  map[string]any{"current_revision": int64(3)}}},
		{name: "a refused mutation", change: store.Change{Expected: 3, Mutation: switchyard.SetOverride("mastery", &bad, nil)},
			want: &switchyard.Error{Code: switchyard.CodeUnknownVersion}},
		{name: "a flag that does not compile", change: store.Change{Mutation: switchyard.ImportFlags(switchyard.Document{
			Flags: flag(`{"regex": [{"var": "email"}, ".*"]}`)})},
			want: &switchyard.Error{Code: switchyard.CodeInvalidRequest,
				Message: `flag "checkout": targeting.regex: unknown operator "regex"`,
				Fields:  map[string]any{"flag": "checkout", "path": "targeting.regex"}}},
		{name: "an evaluator change judges the flags reading it", change: store.Change{Mutation: switchyard.ImportFlags(switchyard.Document{
			Flags:      flag(`{"in": ["@", {"var": "email"}]}`),
			Evaluators: map[string]json.RawMessage{"staff": json.RawMessage(`{"ends_with": [{"var": "email"}, "@example.org"]}`)}})},
			want: &switchyard.Error{Code: switchyard.CodeInvalidRequest,
				Message: `flag "legacy": targeting.and[1].regex: unknown operator "regex"`,
				Fields:  map[string]any{"flag": "legacy", "path": "targeting.and[1].regex"}}},
		{name: "a compilation when the context has ended", ctx: ended, change: store.Change{Mutation: switchyard.ImportFlags(switchyard.Document{
			Flags: flag(`{"in": ["@", {"var": "email"}]}`)})},
			want: &switchyard.Error{Code: switchyard.CodeUnavailable}},
		{name: "a toggle whatever the stored flags", ctx: ended, change: store.Change{Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			next, err := store.Next(ctx, cur, tt.change, now)
			if tt.want != nil {
				var got *switchyard.Error
				if !errors.As(err, &got) || got.Code != tt.want.Code || next != nil {
					t.Fatalf("Next = %v, %v; want refusal %s", next, err, tt.want.Code)
				}
				if tt.want.Message != "" && (got.Message != tt.want.Message || !reflect.DeepEqual(got.Fields, tt.want.Fields)) {
					t.Fatalf("refusal = %q %v, want %q %v", got.Message, got.Fields, tt.want.Message, tt.want.Fields)
				}
				return
			}
			if err != nil || next.Number != 4 || !next.System.ExamMode {
				t.Fatalf("Next = %+v, %v; want revision 4 with exam mode on", next, err)
			}
		})
	}
}

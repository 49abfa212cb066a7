package provider

import (
	"context"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// TestEvaluationsNeverPanic evaluates every type against a corrupt flag
// set (live and pinned): each returns the caller's default with
// ERROR/GENERAL instead of panicking out of the provider.
func TestEvaluationsNeverPanic(t *testing.T) {
	p, err := New("http://switchyard.invalid")
	if err != nil {
		t.Fatal(err)
	}
	// A nil flag set is what a corrupted state looks like: every lookup
	// through it panics.
	p.live.Store(&bundleState{rev: &switchyard.Revision{Number: 1}})
	p.sessions.Add("s-corrupt", session{expires: time.Now().Add(time.Hour)})
	type check struct {
		name        string
		value, want any
		d           openfeature.ProviderResolutionDetail
	}
	ctx := context.Background()
	for _, fc := range []openfeature.FlattenedContext{{}, {SessionIDKey: "s-corrupt"}} {
		var checks []check
		b := p.BooleanEvaluation(ctx, "EXAM_MODE", true, fc)
		checks = append(checks, check{"boolean", b.Value, true, b.ProviderResolutionDetail})
		s := p.StringEvaluation(ctx, "runtime.profile", "fallback", fc)
		checks = append(checks, check{"string", s.Value, "fallback", s.ProviderResolutionDetail})
		f := p.FloatEvaluation(ctx, "ratio", 0.25, fc)
		checks = append(checks, check{"float", f.Value, 0.25, f.ProviderResolutionDetail})
		i := p.IntEvaluation(ctx, "retries", 3, fc)
		checks = append(checks, check{"integer", i.Value, int64(3), i.ProviderResolutionDetail})
		o := p.ObjectEvaluation(ctx, "theme", "plain", fc)
		checks = append(checks, check{"object", o.Value, "plain", o.ProviderResolutionDetail})
		for _, c := range checks {
			rd := c.d.ResolutionDetail()
			if c.value != c.want || rd.Reason != openfeature.ErrorReason || rd.ErrorCode != openfeature.GeneralCode {
				t.Errorf("%s (context %v) = %v %s %s, want the default %v with ERROR/GENERAL", c.name, fc, c.value, rd.Reason, rd.ErrorCode, c.want)
			}
		}
	}
}

// TestErrorCodes maps every evaluator error code onto the SDK's.
func TestErrorCodes(t *testing.T) {
	tests := []struct {
		code evaluator.ResolutionError
		want openfeature.ErrorCode
	}{
		{evaluator.FlagNotFound, openfeature.FlagNotFoundCode},
		{evaluator.TypeMismatch, openfeature.TypeMismatchCode},
		{evaluator.ParseError, openfeature.ParseErrorCode},
		{evaluator.General, openfeature.GeneralCode},
		{evaluator.TargetingKeyMissing, openfeature.TargetingKeyMissingCode},
		{evaluator.InvalidContext, openfeature.InvalidContextCode},
		{"SOMETHING_NEW", openfeature.GeneralCode},
	}
	for _, tt := range tests {
		rd := detail(evaluator.Result{Reason: evaluator.ReasonError, ErrorCode: tt.code, ErrorMessage: "why"}).ResolutionDetail()
		if rd.ErrorCode != tt.want || rd.ErrorMessage != "why" || rd.Reason != openfeature.ErrorReason {
			t.Errorf("%s -> %s %q %s, want %s", tt.code, rd.ErrorCode, rd.ErrorMessage, rd.Reason, tt.want)
		}
	}
}

// TestSessionCacheBound: WithSessionCacheSize bounds the sessions kept.
func TestSessionCacheBound(t *testing.T) {
	p, err := New("http://switchyard.invalid", WithSessionCacheSize(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		p.sessions.Add(id, session{})
	}
	if _, ok := p.sessions.Get("a"); ok || p.sessions.Len() != 2 {
		t.Fatalf("%d sessions kept, the oldest too (%v), want 2 without it", p.sessions.Len(), ok)
	}
}

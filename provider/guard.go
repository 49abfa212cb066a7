// Package provider connects applications to Switchyard through OpenFeature:
// the OpenFeature provider (New), which evaluates in process from the
// server's bundle or remotely over OFREP and pins every session to its
// snapshot, and the guards that stop state writes while the runtime is
// frozen and heavy work during exams, which work with any provider.
package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/switchyard-dev/switchyard"
)

// The flag keys the guards read, and the session attribute they clear.
const (
	FreezeUpdatesFlag = switchyard.FreezeUpdates
	ExamModeFlag      = switchyard.ExamMode
	SessionIDKey      = switchyard.SessionIDAttribute
)

// The error codes the guards answer with.
const (
	CodeFreezeUpdatesActive = "FREEZE_UPDATES_ACTIVE"
	CodeExamModeActive      = "EXAM_MODE_ACTIVE"
)

// BooleanClient is the part of an OpenFeature client a guard needs;
// *openfeature.Client has it.
type BooleanClient interface {
	BooleanValue(ctx context.Context, flag string, defaultValue bool, evalCtx openfeature.EvaluationContext, options ...openfeature.Option) (bool, error)
}

var _ BooleanClient = (*openfeature.Client)(nil)

// Guard refuses a request with 423 Locked while a boolean flag is on. It
// reads the live value on every request, never a session's pinned one:
// freeze is the emergency brake and must act at once.
type Guard struct {
	client BooleanClient
	flag   string
	code   string
	// subject names what is refused, in the error message and body.
	subjectKey, subject string
	// failClosed is the value assumed when the flag cannot be evaluated.
	failClosed bool
}

// RequireMutationsAllowed guards state writes of module: while
// FREEZE_UPDATES is on they get 423 with code FREEZE_UPDATES_ACTIVE. When
// the flag cannot be evaluated the guard assumes the freeze is on, as the
// conservative fallback runtime does.
func RequireMutationsAllowed(client BooleanClient, module string) *Guard {
	return &Guard{client: client, flag: FreezeUpdatesFlag, code: CodeFreezeUpdatesActive,
		subjectKey: "module", subject: module, failClosed: true}
}

// RequireNoExamMode guards heavy work (a recompute, a bulk import): while
// EXAM_MODE is on it gets 423 with code EXAM_MODE_ACTIVE. Session traffic
// should not be guarded by it: exams must keep working.
func RequireNoExamMode(client BooleanClient, work string) *Guard {
	return &Guard{client: client, flag: ExamModeFlag, code: CodeExamModeActive,
		subjectKey: "work", subject: work}
}

// Error is the refusal a guard reports; Code is what callers branch on.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Check returns an *Error when the guarded action is refused now, and nil
// when it may go ahead.
func (g *Guard) Check(ctx context.Context) error {
	// An empty sessionId overrides any session in the client's or the
	// transaction's context, so a pinned session cannot hide a freeze.
	on, _ := g.client.BooleanValue(ctx, g.flag, g.failClosed,
		openfeature.NewTargetlessEvaluationContext(map[string]any{SessionIDKey: ""}))
	if !on {
		return nil
	}
	return &Error{Code: g.code, Message: fmt.Sprintf("%s is on: %s %q is refused until it is lifted", g.flag, g.subjectKey, g.subject)}
}

// Handler wraps next for net/http: refused requests get 423 and a JSON
// body {"error":{"code","message",<subject>}}; others reach next.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.Check(r.Context()); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusLocked)
			_, _ = w.Write(g.Body(err))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Body returns the JSON body of a refusal, shared by the net/http and Gin
// adapters so both answer alike.
func (g *Guard) Body(err error) []byte {
	e, ok := err.(*Error)
	if !ok {
		e = &Error{Code: g.code, Message: err.Error()}
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": e.Code, "message": e.Message, g.subjectKey: g.subject,
	}})
	return b
}

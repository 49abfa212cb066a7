package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/switchyard-dev/switchyard"
)

// Write is what every change carries besides what it changes. The server
// checks, in order, the token's role, the reason, the phrase, ADMIN_FREEZE
// and the revision, and records every attempt, applied or refused, in the
// audit log.
type Write struct {
	// Phrase confirms the change: the exact police-mode phrase, typed by
	// the operator (switchyard.SystemFlagPhrase and the others say which).
	// A wrong one is refused with PHRASE_MISMATCH and the field
	// expected_phrase.
	Phrase string
	// Reason says why the change is made, for the audit log; required.
	Reason string
	// IfRevision, when set, applies the change only if the runtime is still
	// at that revision (If-Match); otherwise it is refused with
	// REVISION_CONFLICT. 0 applies it to whatever revision is current.
	IfRevision int64
	// IdempotencyKey names the change, so that sending it again applies it
	// at most once and answers the first outcome. Empty, the client makes
	// one for the call (and sends it with each of its attempts); keep your
	// own (NewIdempotencyKey) to send the change again later, after an
	// unknown outcome.
	IdempotencyKey string
}

// confirmation is the part of every change's body that Write supplies.
type confirmation struct {
	Phrase string `json:"phrase"`
	Reason string `json:"reason"`
}

// call is the API call of a change sent with w.
func (w Write) call(method, path string, body any) call {
	key := w.IdempotencyKey
	if key == "" {
		key = NewIdempotencyKey()
	}
	return call{method: method, path: path, body: body, ifMatch: w.IfRevision, key: key}
}

func (w Write) confirmation() confirmation { return confirmation{Phrase: w.Phrase, Reason: w.Reason} }

// apply sends a change and returns what the server applied.
func (c *Client) apply(ctx context.Context, cl call) (*Applied, error) {
	var a Applied
	if _, err := c.do(ctx, cl, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// SetSystemFlag turns a system flag (switchyard.ExamMode, FreezeUpdates,
// AdminFreeze) on or off; the phrase is switchyard.SystemFlagPhrase.
func (c *Client) SetSystemFlag(ctx context.Context, flag string, on bool, w Write) (*Applied, error) {
	return c.apply(ctx, w.call(http.MethodPost, "/v1/admin/runtime/flags", struct {
		confirmation
		Flag  string `json:"flag"`
		Value bool   `json:"value"`
	}{w.confirmation(), flag, on}))
}

// SetProfile makes a profile the active one; the phrase is
// switchyard.ProfilePhrase.
func (c *Client) SetProfile(ctx context.Context, name string, w Write) (*Applied, error) {
	return c.apply(ctx, w.call(http.MethodPost, "/v1/admin/runtime/profile", struct {
		confirmation
		ProfileName string `json:"profile_name"`
	}{w.confirmation(), name}))
}

// SetOverride pins a module's version, whether it is on, or both, over the
// active profile. The phrase is switchyard.OverrideVersionPhrase when o
// sets a version, else switchyard.ModuleEnabledPhrase.
func (c *Client) SetOverride(ctx context.Context, module string, o switchyard.Override, w Write) (*Applied, error) {
	return c.apply(ctx, w.call(http.MethodPost, "/v1/admin/runtime/override", struct {
		confirmation
		Module    string  `json:"module"`
		Version   *string `json:"version,omitempty"`
		IsEnabled *bool   `json:"is_enabled,omitempty"`
	}{w.confirmation(), module, o.Version, o.Enabled}))
}

// ClearOverride removes a module's override, so the active profile
// decides it again; the phrase is switchyard.ClearOverridePhrase. A module
// without an override is NOT_FOUND.
func (c *Client) ClearOverride(ctx context.Context, module string, w Write) (*Applied, error) {
	return c.apply(ctx, w.call(http.MethodDelete, "/v1/admin/runtime/override/"+url.PathEscape(module), w.confirmation()))
}

// SwitchMode switches the server's process to the system mode target
// (switchyard.ModeDemo or ModeProduction) live; the phrase is
// switchyard.ModeSwitchPhrase. A switch to production with requirements
// missing is refused with PRODUCTION_REQUIREMENTS_MISSING, unless force
// records it for a restart instead (Toggled.RestartRequired). IfRevision
// is the current revision of the mode served.
func (c *Client) SwitchMode(ctx context.Context, target string, force bool, w Write) (*Toggled, error) {
	var t Toggled
	cl := w.call(http.MethodPost, "/v1/admin/system-mode/toggle", struct {
		confirmation
		TargetMode string `json:"target_mode"`
		Force      bool   `json:"force,omitempty"`
	}{w.confirmation(), target, force})
	if _, err := c.do(ctx, cl, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ImportRequest is a vendor's flag file to import.
type ImportRequest struct {
	// Format is flagd, launchdarkly, unleash or gofeatureflag.
	Format string
	// Content is the file's text, at most 10 MiB.
	Content string
	// Environment is the LaunchDarkly or Unleash environment to import,
	// required when the file holds several.
	Environment string
	// DryRun converts the file and answers the flagd document it would
	// store, storing nothing.
	DryRun bool
}

// Import converts a flag file on the server and stores its flags as one
// revision, replacing flags with the same keys; the phrase is
// switchyard.ImportPhrase.
func (c *Client) Import(ctx context.Context, r ImportRequest, w Write) (*Imported, error) {
	var im Imported
	cl := w.call(http.MethodPost, "/v1/admin/import", struct {
		confirmation
		Format      string `json:"format"`
		Content     string `json:"content"`
		Environment string `json:"environment,omitempty"`
		DryRun      bool   `json:"dry_run,omitempty"`
	}{w.confirmation(), r.Format, r.Content, r.Environment, r.DryRun})
	if _, err := c.do(ctx, cl, &im); err != nil {
		return nil, err
	}
	return &im, nil
}

package client

import (
	"encoding/json"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// Status is the runtime at the current revision, as GET
// /v1/admin/runtime/status answers it: the system flags, the active
// profile and the overrides, what they resolve to, and what may be chosen.
type Status struct {
	Revision  int64                                `json:"revision"`
	CreatedAt time.Time                            `json:"created_at"`
	Mode      string                               `json:"mode"`
	Flags     switchyard.SystemFlags               `json:"flags"`
	Profile   string                               `json:"profile"`
	Overrides map[string]switchyard.Override       `json:"overrides"`
	Modules   map[string]switchyard.ResolvedModule `json:"modules"`
	Catalog   []switchyard.Module                  `json:"catalog"`
	Profiles  map[string]switchyard.Profile        `json:"profiles"`
	// Degraded says why the server runs degraded (Redis down); empty when
	// it does not.
	Degraded string `json:"degraded,omitempty"`
	// RateLimited counts the requests the server answered RATE_LIMITED
	// since it started.
	RateLimited int64 `json:"rate_limited,omitempty"`
	// Scheduled lists the next steps of change requests, soonest first,
	// at most 10.
	Scheduled []Scheduled `json:"scheduled,omitempty"`
}

// Scheduled is the next step of a change request: applying it (Step
// "apply"), putting back what it changed ("revert") or its expiry
// ("expire").
type Scheduled struct {
	Change int64                  `json:"change"`
	Action string                 `json:"action"`
	Target string                 `json:"target"`
	State  switchyard.ChangeState `json:"state"`
	Step   string                 `json:"step"`
	At     time.Time              `json:"at"`
	// Held says the step waits for ADMIN_FREEZE to be lifted.
	Held bool `json:"held,omitempty"`
}

// Applied is the answer to a change: its audit entry and the runtime at
// the revision it made.
type Applied struct {
	AuditSeq int64  `json:"audit_seq"`
	Status   Status `json:"status"`
}

// Requirement is one item of production mode's checklist.
type Requirement struct {
	Name   string `json:"name"`
	Why    string `json:"why"`
	Met    bool   `json:"met"`
	Detail string `json:"detail,omitempty"`
}

// Posture is the system mode as GET /v1/admin/system-mode/current answers
// it: the mode served, who set it and when, and production's checklist,
// checked at the call.
type Posture struct {
	Mode     string    `json:"mode"`
	SetAt    time.Time `json:"set_at"`
	SetBy    string    `json:"set_by"`
	Reason   string    `json:"reason,omitempty"`
	AuditSeq int64     `json:"audit_seq,omitempty"`
	// DesiredMode is the mode a forced switch recorded for a restart.
	DesiredMode     string        `json:"desired_mode,omitempty"`
	RestartRequired bool          `json:"restart_required"`
	AllowLiveSwitch bool          `json:"allow_live_switch"`
	Switchable      bool          `json:"switchable"`
	ProductionReady bool          `json:"production_ready"`
	Requirements    []Requirement `json:"production_requirements"`
	Missing         []Requirement `json:"missing_production_requirements"`
}

// Toggled is the answer to a mode switch: made live, or, forced with
// requirements missing, recorded for a restart.
type Toggled struct {
	Switched        bool          `json:"switched"`
	RestartRequired bool          `json:"restart_required"`
	Missing         []Requirement `json:"missing,omitempty"`
	AuditSeq        int64         `json:"audit_seq"`
	Posture         Posture       `json:"posture"`
}

// Readiness is what GET /readyz answers: whether the server serves its
// store's revision, and if not, or degraded, why.
type Readiness struct {
	// Ready is false when the server answered 503: it cannot read its
	// store, or serves a stand-in for its revision.
	Ready          bool   `json:"ready"`
	Status         string `json:"status"`
	Reason         string `json:"reason,omitempty"`
	Revision       int64  `json:"revision,omitempty"`
	ServedRevision int64  `json:"served_revision,omitempty"`
}

// AuditEntry is one row of the audit log: an attempt to change the
// runtime, applied or rejected, chained to the one before by its hash.
type AuditEntry struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Role      string    `json:"role"`
	Action    string    `json:"action"`
	Target    string    `json:"target"`
	Reason    string    `json:"reason"`
	Phrase    string    `json:"phrase"`
	RequestID string    `json:"request_id"`
	// Outcome is "applied" or "rejected"; Why says why a rejected one was.
	Outcome  string          `json:"outcome"`
	Why      string          `json:"why,omitempty"`
	Revision int64           `json:"revision"`
	Before   json.RawMessage `json:"before,omitempty"`
	After    json.RawMessage `json:"after,omitempty"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// AuditPage is one page of the audit log, newest first. NextBefore is the
// Before of the next, older page; 0 on the last page.
type AuditPage struct {
	Entries    []AuditEntry `json:"entries"`
	NextBefore int64        `json:"next_before,omitempty"`
	// Truncated says the page holds fewer entries than asked for, though
	// older ones exist: the server bounds a page's bytes.
	Truncated bool `json:"truncated,omitempty"`
}

// Verification is the result of walking the audit log's hash chain.
type Verification struct {
	OK      bool  `json:"ok"`
	Entries int64 `json:"entries"`
	// FirstBad is the first entry whose hash does not match its content
	// and predecessor, and Problem says how; both unset when OK.
	FirstBad int64  `json:"first_bad_seq,omitempty"`
	Problem  string `json:"problem,omitempty"`
	HeadSeq  int64  `json:"head_seq"`
	HeadHash string `json:"head_hash,omitempty"`
}

// Evaluation is a flag's evaluation as OFREP answers it. A success
// without a value (a disabled module, a flag without a default variant)
// means "use your code default". A flag that could not be evaluated has
// ErrorCode (FLAG_NOT_FOUND, TARGETING_KEY_MISSING, GENERAL, ...) and
// ErrorDetails set.
type Evaluation struct {
	Key          string         `json:"key"`
	Value        any            `json:"value,omitempty"`
	Reason       string         `json:"reason,omitempty"`
	Variant      string         `json:"variant,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
	ErrorCode    string         `json:"errorCode,omitempty"`
	ErrorDetails string         `json:"errorDetails,omitempty"`
}

// ImportNote is one part of an imported flag that was not converted
// exactly.
type ImportNote struct {
	Flag     string `json:"flag"`
	Path     string `json:"path,omitempty"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// Imported is the answer to an import: the change it made, the importer's
// report and the keys of the flags stored. A dry run stores nothing and
// answers the flagd document it would store instead.
type Imported struct {
	DryRun   bool            `json:"dry_run,omitempty"`
	AuditSeq int64           `json:"audit_seq,omitempty"`
	Status   *Status         `json:"status,omitempty"`
	Report   []ImportNote    `json:"report"`
	Imported []string        `json:"imported,omitempty"`
	Document json.RawMessage `json:"document,omitempty"`
}

// Package switchyard is the domain of Switchyard, a runtime control plane
// served as OpenFeature flags: the revisions an operator's changes make,
// the mutations that make them, the snapshots that pin a session, the
// error type and codes every layer shares, and the names and wire types
// the server and its clients agree on. It imports only the standard
// library; compiling and evaluating flags is package evaluator's, storing
// them package store's, and serving them internal/control's.
package switchyard

import "time"

// The modes (design §7): demo serves the in-memory fixtures and needs
// nothing; production serves Postgres behind Redis.
const (
	ModeDemo       = "demo"
	ModeProduction = "production"
)

// SessionIDAttribute is the evaluation context attribute naming a
// session: when present, flags are evaluated as of the session's snapshot.
const SessionIDAttribute = "sessionId"

// MetadataPin is the flag metadata key of a session's result (reason
// STALE) that says why the values are not the session's stored pin, and
// the Pin values are what it says: pinned by this replica during an outage;
// a pin that could not be read nor made (the live values); a new session
// not pinned because its client made more new sessions lately than it
// may, or because the store holds as many as it may (the live values).
// The server and the in-process provider say the same.
const (
	MetadataPin     = "pin"
	PinLocal        = "local"
	PinUnreadable   = "unreadable"
	PinRateLimited  = "rate_limited"
	PinSessionLimit = "session_limit"
)

// Role is what an operator's token may do.
type Role string

// The roles: an admin changes the runtime and reads everything a viewer
// reads; a viewer reads the status and the audit log; a client (an
// application, a browser) evaluates flags and reads nothing of the admin
// API. Every role may evaluate.
const (
	RoleAdmin  Role = "admin"
	RoleViewer Role = "viewer"
	RoleClient Role = "client"
)

// Valid reports whether r is one of the roles above: a token granting
// anything else is a configuration error, not a token that grants nothing.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleViewer || r == RoleClient }

// Operates reports whether r may use the admin API (reading it, at
// least): a client token is for evaluation only.
func (r Role) Operates() bool { return r == RoleAdmin || r == RoleViewer }

// Operator is who acts through a token: the name the audit log and the
// service log give as the actor, and the role the token grants. Names are
// unique, so operators can be told apart (a change request's approver must
// be another admin than its author).
type Operator struct {
	Name string
	Role Role
}

// Bundle is what GET /v1/bundle serves: a whole revision and the system
// mode it is seen in. An in-process provider compiles it with
// evaluator.Compile(Revision, Mode), the very call the server makes, so
// local evaluation cannot drift from the server's.
type Bundle struct {
	Revision *Revision `json:"revision"`
	Mode     string    `json:"mode"`
}

// RevisionEvent is the data of a `revision` event on GET /v1/stream: a
// newly installed revision, the flags it changed, and the mode serving it.
// Revision numbers repeat across histories (a mode switch, a restarted
// demo server, a restored database), so a client compares RevisionID with
// the ID of the revision it holds, not the numbers.
type RevisionEvent struct {
	Revision   int64  `json:"revision"`
	RevisionID string `json:"revision_id,omitempty"`
	Mode       string `json:"mode"`
	// Changed names the flags whose definition differs from the revision
	// the server installed before; every flag of both when the server's
	// history was rewound.
	Changed []string `json:"changed"`
	// HeartbeatMS is the interval of the stream's heartbeat comments, in
	// milliseconds, which the server sets on every event it sends: a
	// client that hears nothing for a few intervals knows the stream is
	// lost, though its connection looks open. Zero means StreamHeartbeat.
	HeartbeatMS int64 `json:"heartbeat_ms,omitempty"`
}

// StreamHeartbeat is how often GET /v1/stream sends a heartbeat comment
// unless the server is configured otherwise: often enough that proxies
// with the usual 60 s idle timeout keep the stream open, and that a client
// notices a lost stream within a minute.
const StreamHeartbeat = 15 * time.Second

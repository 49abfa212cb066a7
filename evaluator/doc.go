// Package evaluator compiles revisions into flag sets and evaluates them:
// the runtime's own flags (system flags, SYSTEM_MODE, the profile, each
// module's version and enabled state) and general flags in flagd's format,
// through one path, with flagd's targeting semantics (package
// evaluator/jsonlogic). It also resolves a revision's effective runtime,
// pins session snapshots, validates whole revisions before they are stored,
// parses flagd documents and exports them. It is pure: no I/O.
package evaluator

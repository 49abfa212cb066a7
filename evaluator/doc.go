// Package evaluator compiles revisions into flag sets and evaluates them:
// the runtime's own flags (system flags, SYSTEM_MODE, the profile, each
// module's version and enabled state) and general flags in flagd's format,
// through one path, with flagd's targeting semantics (package
// evaluator/jsonlogic). A revision is compiled from the flag set of
// another (CompileFrom), so it compiles only the flags it changes and
// shares the rest, and a change is validated the same way
// (ValidateChange): a toggle costs the same with ten flags stored or ten
// thousand. It also resolves a revision's effective runtime, pins session
// snapshots, parses flagd documents and exports them. It is pure: no I/O.
package evaluator

// Command switchyard is the Switchyard server and the operator's tool:
// serve and migrate, and the commands that talk to the REST API of any
// replica (status, the runbook's changes, the audit log, sessions,
// evaluations, import and export).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchyard:", errorText(err))
	}
	os.Exit(exitCode(err))
}

// The exit codes, which scripts branch on; the README's "Operator CLI"
// lists them.
const (
	exitOK = 0
	// exitRefused: the server refused the request, or the command failed.
	exitRefused = 1
	// exitUsage: the command line is wrong; nothing was sent.
	exitUsage = 2
	// exitUnavailable: the server did not answer, or answered that it
	// could not (503: nothing was applied) or could not say whether a
	// change was applied (504).
	exitUnavailable = 3
)

// exitCode is the exit code of a command that returned err.
func exitCode(err error) int {
	var usage usageError
	switch code := switchyard.ErrorCode(err); {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		return exitUsage
	case errors.Is(err, client.ErrUnreachable), code == switchyard.CodeUnavailable, code == switchyard.CodeOutcomeUnknown:
		return exitUnavailable
	}
	return exitRefused
}

// usageError is a command line that cannot run: nothing was sent.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errorText is how the command line shows err: the API's code and
// message, then the fields that help (the expected phrase, the allowed
// versions, what production lacks), one a line.
func errorText(err error) string {
	text := err.Error()
	var e *switchyard.Error
	if !errors.As(err, &e) {
		return text
	}
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		v, _ := json.Marshal(e.Fields[k])
		text += fmt.Sprintf("\n  %s: %s", k, v)
	}
	return text
}

// cli is what a command reads and writes besides its arguments: the
// environment, and the operator's terminal or a script's pipes.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run is the whole program, with its inputs passed in so tests can drive
// it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	return c.run(ctx, args)
}

// runner runs a command with the arguments left after its flags.
type runner func(ctx context.Context, args []string) error

// command is one command of switchyard, e.g. "status" or "audit list".
type command struct {
	// name is the command's words.
	name string
	// args is the synopsis of its arguments, e.g. "on|off".
	args string
	// choices are the values of its first argument, for completion.
	choices []string
	summary string
	example string
	// setup defines the command's flags on fs and returns what runs it
	// once fs has parsed the command line. Help and completion call it
	// to read the flags, and never run what it returns.
	setup func(fs *flag.FlagSet, c *cli) runner
	// propose reads the command's arguments as a change to propose
	// (switchyard change propose exam-mode on); nil for a command whose
	// change cannot be proposed.
	propose func(args []string) (proposal, error)
}

// group is the first word of a command of several words ("audit" of
// "audit list"); empty for a command of one.
func (cmd command) group() string {
	g, _, ok := strings.Cut(cmd.name, " ")
	if !ok {
		return ""
	}
	return g
}

// switchChoices are the arguments of a switch command.
var switchChoices = []string{"on", "off"}

// commands lists every command, in the order the usage shows them.
func commands() []command {
	return []command{
		{name: "status", summary: "show the runtime: mode, switches, profile, modules and overrides, revision, readiness, scheduled changes",
			example: "switchyard status --output json", setup: statusCommand},
		{name: "exam-mode", args: "on|off", choices: switchChoices, summary: "turn EXAM_MODE on or off: heavy work is refused, sessions keep working",
			example: `switchyard exam-mode on --reason "final exams 09:00-12:00"`, setup: systemFlagCommand(switchyard.ExamMode),
			propose: proposeSystemFlag(switchyard.ExamMode)},
		{name: "freeze", args: "on|off", choices: switchChoices, summary: "turn FREEZE_UPDATES on or off: the emergency brake on application state writes",
			example: `switchyard freeze on --reason "mastery v1 writing bad scores"`, setup: systemFlagCommand(switchyard.FreezeUpdates),
			propose: proposeSystemFlag(switchyard.FreezeUpdates)},
		{name: "admin-freeze", args: "on|off", choices: switchChoices, summary: "turn ADMIN_FREEZE on or off: every admin change but lifting it is refused",
			example: `switchyard admin-freeze on --reason "incident review"`, setup: systemFlagCommand(switchyard.AdminFreeze),
			propose: proposeSystemFlag(switchyard.AdminFreeze)},
		{name: "profile set", args: "NAME", summary: "make a profile the active one (primary, fallback, shadow, ...)",
			example: `switchyard profile set fallback --reason "roll back to v0 while we investigate"`, setup: profileCommand, propose: proposeProfile},
		{name: "override set", args: "MODULE VERSION", summary: "serve a module at a version, whatever the profile says",
			example: `switchyard override set mastery v0 --reason "v1 regression"`, setup: overrideSetCommand, propose: proposeOverrideSet},
		{name: "override disable", args: "MODULE", summary: "turn a module off, whatever the profile says",
			example: `switchyard override disable neo4j --reason "neo4j cluster down"`, setup: overrideEnabledCommand(false), propose: proposeOverrideEnabled(false)},
		{name: "override enable", args: "MODULE", summary: "turn a module on, whatever the profile says",
			example: `switchyard override enable neo4j --reason "neo4j cluster back"`, setup: overrideEnabledCommand(true), propose: proposeOverrideEnabled(true)},
		{name: "override clear", args: "MODULE", summary: "remove a module's override: the profile decides it again",
			example: `switchyard override clear mastery --reason "v1 fixed"`, setup: overrideClearCommand, propose: proposeOverrideClear},
		{name: "mode set", args: "demo|production", choices: []string{switchyard.ModeDemo, switchyard.ModeProduction},
			summary: "switch the server's process to demo or production mode (--force: record it for a restart)",
			example: `switchyard mode set production --reason "go live"`, setup: modeCommand},
		{name: "change propose", args: "COMMAND ARGS...", summary: "propose a runbook change (exam-mode on, profile set fallback, ...) for another admin to approve, optionally scheduled",
			example: `switchyard change propose exam-mode on --apply-at 2026-06-15T09:00:00+02:00 --revert-at 2026-06-15T12:00:00+02:00 --reason "final exams"`, setup: changeProposeCommand},
		{name: "change approve", args: "ID", summary: "show a change request and its diff, and approve it by typing its phrase (not your own request)",
			example: `switchyard change approve 7 --reason "checked with the exams office"`, setup: changeApproveCommand},
		{name: "change reject", args: "ID", summary: "reject another admin's change request",
			example: `switchyard change reject 7 --reason "wrong day"`, setup: changeMoveCommand("rejected", (*client.Client).RejectChange)},
		{name: "change cancel", args: "ID", summary: "cancel a change request that has not applied yet",
			example: `switchyard change cancel 7 --reason "exam moved"`, setup: changeMoveCommand("cancelled", (*client.Client).CancelChange)},
		{name: "change list", summary: "list change requests, newest first, optionally in one state",
			example: "switchyard change list --state proposed", setup: changeListCommand},
		{name: "change show", args: "ID", summary: "show a change request, its history and what it makes of the runtime",
			example: "switchyard change show 7", setup: changeShowCommand},
		{name: "audit list", summary: "list the audit log, newest first, optionally filtered",
			example: "switchyard audit list --outcome rejected --since 24h", setup: auditListCommand},
		{name: "audit tail", summary: "print the newest audit entries, then every new one as it is written",
			example: "switchyard audit tail --action set_flag", setup: auditTailCommand},
		{name: "audit verify", summary: "walk the audit hash chain, on the server or in the database; exits 1 when it is broken",
			example: "switchyard audit verify", setup: auditVerifyCommand},
		{name: "session show", args: "ID", summary: "show a session's pinned values beside the live ones",
			example: "switchyard session show s-123", setup: sessionCommand},
		{name: "eval", args: "FLAG [key=value ...]", summary: "evaluate a flag as an application would, with an evaluation context",
			example: "switchyard eval module.mastery targetingKey=learner-9 sessionId=s-123", setup: evalCommand},
		{name: "import", args: "FILE", summary: "import flagd, LaunchDarkly, Unleash or GO Feature Flag flags (--dry-run converts locally)",
			example: `switchyard import --from unleash --environment production --reason "moving off Unleash" export.json`, setup: importCommand},
		{name: "export", summary: "write the server's current flags as a flagd document",
			example: "switchyard export --format flagd --output flags.json", setup: exportCommand},
		{name: "serve", summary: "run the HTTP server (demo mode, in memory, unless a database URL is given)",
			example: "switchyard serve --addr 127.0.0.1:8080", setup: serveCommand},
		{name: "migrate up", summary: "apply the pending Postgres migrations",
			example: "switchyard migrate up --database-url postgres://postgres@127.0.0.1:5432/switchyard", setup: migrateCommand(true)},
		{name: "migrate status", summary: "list the Postgres migrations, applied or pending",
			example: "switchyard migrate status", setup: migrateCommand(false)},
		{name: "completion", args: "bash|zsh", choices: []string{"bash", "zsh"}, summary: "print a shell completion script",
			example: "source <(switchyard completion bash)", setup: completionCommand},
	}
}

// run finds the command args name, parses its flags and runs it. --help
// on any command prints its help to stdout and succeeds.
func (c *cli) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		printUsage(c.stderr, "")
		return usagef("no command given")
	}
	if isHelp(args[0]) || args[0] == "help" {
		printUsage(c.stdout, "")
		return nil
	}
	cmd, rest, ok := find(args)
	if !ok {
		if !slices.ContainsFunc(commands(), func(cmd command) bool { return cmd.group() == args[0] }) {
			printUsage(c.stderr, "")
			return usagef("unknown command %q", args[0])
		}
		if len(args) > 1 && isHelp(args[1]) {
			printUsage(c.stdout, args[0])
			return nil
		}
		printUsage(c.stderr, args[0])
		if len(args) == 1 {
			return usagef("%s needs a subcommand", args[0])
		}
		return usagef("unknown command %q", args[0]+" "+args[1])
	}
	fs := flag.NewFlagSet("switchyard "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runCmd := cmd.setup(fs, c)
	positional, err := parseInterleaved(fs, rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		cmd.help(c.stdout, fs)
		return nil
	case err != nil:
		return usagef("%v (switchyard %s --help shows its flags)", err, cmd.name)
	}
	return runCmd(ctx, positional)
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// find returns the command args name and the arguments after its name.
func find(args []string) (command, []string, bool) {
	for _, cmd := range commands() {
		words := strings.Fields(cmd.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return cmd, args[len(words):], true
		}
	}
	return command{}, nil, false
}

// printUsage writes the list of commands, or of a group's, to w.
func printUsage(w io.Writer, group string) {
	if group == "" {
		fmt.Fprint(w, "usage: switchyard <command> [flags]\n\ncommands:\n")
	} else {
		fmt.Fprintf(w, "usage: switchyard %s <subcommand> [flags]\n\nsubcommands:\n", group)
	}
	for _, cmd := range commands() {
		if group != "" && cmd.group() != group {
			continue
		}
		fmt.Fprintf(w, "  %-34s %s\n", strings.TrimSpace(cmd.name+" "+cmd.args), cmd.summary)
	}
	fmt.Fprint(w, `
Run "switchyard <command> --help" for a command's flags and an example.
The commands that call the server read --server (SWITCHYARD_SERVER, default
`+defaultServer+`) and --token, --token-file (SWITCHYARD_TOKEN,
SWITCHYARD_TOKEN_FILE). Exit codes: 0 ok, 1 refused or failed, 2 usage,
3 server unavailable.
`)
}

// help writes a command's help to w: its synopsis, what it does, an
// example and its flags.
func (cmd command) help(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: switchyard %s [flags]", cmd.name)
	if cmd.args != "" {
		fmt.Fprint(w, " "+cmd.args)
	}
	fmt.Fprintf(w, "\n\n%s.\n\nexample:\n  %s\n", cmd.summary, cmd.example)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nflags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// parseInterleaved parses args with fs, allowing flags after positional
// arguments (switchyard import FILE --dry-run), and returns the positional
// ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// noArgs refuses positional arguments to a command that takes none.
func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments: %s", strings.Join(args, " "))
	}
	return nil
}

// wantArgs refuses a command line without exactly the arguments names.
func wantArgs(args []string, names ...string) error {
	if len(args) != len(names) {
		return usagef("want %s, got %d arguments", strings.Join(names, " "), len(args))
	}
	return nil
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/client"
)

// proposal is a change named as its direct command names it (exam-mode
// on, profile set fallback), to propose as a change request instead of
// applying it.
type proposal struct {
	phrase string
	// mutation is the change, which names its action and shows what it
	// makes different.
	mutation switchyard.Mutation
	// fields are the fields of the action's direct route.
	fields map[string]any
}

// proposeSystemFlag reads the on|off of "exam-mode|freeze|admin-freeze".
func proposeSystemFlag(flagName string) func(args []string) (proposal, error) {
	return func(args []string) (proposal, error) {
		on, err := parseOnOff(args)
		if err != nil {
			return proposal{}, err
		}
		return proposal{switchyard.SystemFlagPhrase(flagName, on), switchyard.SetSystemFlag(flagName, on),
			map[string]any{"flag": flagName, "value": on}}, nil
	}
}

// proposeProfile reads the NAME of "profile set".
func proposeProfile(args []string) (proposal, error) {
	if err := wantArgs(args, "NAME"); err != nil {
		return proposal{}, err
	}
	return proposal{switchyard.ProfilePhrase(args[0]), switchyard.SetActiveProfile(args[0]),
		map[string]any{"profile_name": args[0]}}, nil
}

// proposeOverrideSet reads the MODULE VERSION of "override set".
func proposeOverrideSet(args []string) (proposal, error) {
	if err := wantArgs(args, "MODULE", "VERSION"); err != nil {
		return proposal{}, err
	}
	module, version := args[0], args[1]
	return proposal{switchyard.OverrideVersionPhrase(module, version), switchyard.SetOverride(module, &version, nil),
		map[string]any{"module": module, "version": version}}, nil
}

// proposeOverrideEnabled reads the MODULE of "override enable|disable".
func proposeOverrideEnabled(on bool) func(args []string) (proposal, error) {
	return func(args []string) (proposal, error) {
		if err := wantArgs(args, "MODULE"); err != nil {
			return proposal{}, err
		}
		return proposal{switchyard.ModuleEnabledPhrase(args[0], on), switchyard.SetOverride(args[0], nil, &on),
			map[string]any{"module": args[0], "is_enabled": on}}, nil
	}
}

// proposeOverrideClear reads the MODULE of "override clear".
func proposeOverrideClear(args []string) (proposal, error) {
	if err := wantArgs(args, "MODULE"); err != nil {
		return proposal{}, err
	}
	return proposal{switchyard.ClearOverridePhrase(args[0]), switchyard.ClearOverride(args[0]),
		map[string]any{"module": args[0]}}, nil
}

// proposable lists the commands whose change may be proposed.
func proposable() []string {
	var names []string
	for _, cmd := range commands() {
		if cmd.propose != nil {
			names = append(names, cmd.name)
		}
	}
	return names
}

// timeFlag defines on fs a flag of a time in RFC 3339, nil until set.
func timeFlag(fs *flag.FlagSet, name, usage string) **time.Time {
	var at *time.Time
	fs.Func(name, usage, func(s string) error {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return fmt.Errorf("%q: use a time in RFC 3339, e.g. 2026-06-15T09:00:00+02:00", s)
		}
		at = &t
		return nil
	})
	return &at
}

// changeProposeCommand is "switchyard change propose COMMAND ARGS...":
// the change a direct command would make, proposed as a change request.
func changeProposeCommand(fs *flag.FlagSet, c *cli) runner {
	var w writeFlags
	w.bind(fs, c.getenv)
	applyAt := timeFlag(fs, "apply-at", "apply the change at this `time` (RFC 3339) once approved; default: as soon as it is approved")
	revertAt := timeFlag(fs, "revert-at", "put back what the change made at this `time` (RFC 3339); default: never")
	expiresAt := timeFlag(fs, "expires-at", "drop the change unless applied by this `time` (RFC 3339); default: never")
	return func(ctx context.Context, args []string) error {
		cmd, rest, ok := find(args)
		if !ok || cmd.propose == nil {
			return usagef("want the command of the change to propose: %s", strings.Join(proposable(), ", "))
		}
		p, err := cmd.propose(rest)
		if err != nil {
			return err
		}
		return c.makeChange(ctx, &w, change{
			phrase:   p.phrase,
			proposed: true,
			effects: func(_ context.Context, _ *client.Client, st *client.Status) ([]effect, error) {
				return mutationEffects(st, p.mutation)
			},
			apply: func(ctx context.Context, api *client.Client, cw client.Write) (any, string, error) {
				cr, err := api.ProposeChange(ctx, client.Proposal{Action: p.mutation.Action, Fields: p.fields,
					ApplyAt: *applyAt, RevertAt: *revertAt, ExpiresAt: *expiresAt}, cw)
				if err != nil {
					return nil, "", err
				}
				return cr, changeLine(&cr.ChangeRequest), nil
			},
		})
	}
}

// changeLine says where a change request stands, in a line.
func changeLine(cr *switchyard.ChangeRequest) string {
	line := fmt.Sprintf("change %d (%s %s) is %s", cr.ID, cr.Action, cr.Target, cr.State)
	switch {
	case cr.State == switchyard.ChangeProposed:
		line += fmt.Sprintf(", %d of %d approvals", len(cr.Approvals), cr.ApprovalsRequired)
		if cr.ApplyAt != nil {
			line += ", to apply at " + formatTime(*cr.ApplyAt)
		}
	case cr.State == switchyard.ChangeApproved:
		line += ", to apply at " + formatTime(cr.ApplyDue())
	case cr.State == switchyard.ChangeApplied:
		line += fmt.Sprintf(" at revision %d", cr.AppliedRevision)
	case cr.Why != "":
		line += ": " + cr.Why
	}
	switch {
	case cr.RevertAt != nil && cr.Revert == "":
		line += ", to revert at " + formatTime(*cr.RevertAt)
	case cr.Revert != "" && cr.Why != "":
		line += ", revert " + cr.Revert + ": " + cr.Why
	case cr.Revert != "":
		line += ", revert " + cr.Revert
	}
	if cr.Held {
		line += ", held by ADMIN_FREEZE"
	}
	return line
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// changeID reads the ID argument of a change request command.
func changeID(args []string) (int64, error) {
	if err := wantArgs(args, "ID"); err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || id < 1 {
		return 0, usagef("%q: a change request's ID is a number, as change list shows it", args[0])
	}
	return id, nil
}

// changeApproveCommand is "switchyard change approve ID": show the change
// and its diff, ask for its phrase, and approve it.
func changeApproveCommand(fs *flag.FlagSet, c *cli) runner {
	var (
		api            apiFlags
		out            outputFlag
		reason, phrase string
	)
	fs.StringVar(&reason, "reason", "", "`why` you approve it, for the audit log (required)")
	fs.StringVar(&phrase, "phrase", "", "the change's confirmation `phrase`, for scripts; without it you are asked to type it")
	api.bind(fs, c.getenv)
	out.bind(fs)
	return func(ctx context.Context, args []string) error {
		id, err := changeID(args)
		if err != nil {
			return err
		}
		if strings.TrimSpace(reason) == "" {
			return usagef("--reason is required: say why you approve it, for the audit log")
		}
		cl, err := api.client("an admin")
		if err != nil {
			return err
		}
		cr, err := cl.ChangeRequest(ctx, id)
		if err != nil {
			return err
		}
		c.printChange(c.stderr, cr)
		typed, err := c.confirm(ctx, "approve", cr.Phrase, phrase)
		if err != nil {
			return err
		}
		approved, err := cl.ApproveChange(ctx, id, client.Write{Phrase: typed, Reason: reason})
		if err != nil {
			return err
		}
		return c.changeDone(out, "approved", approved)
	}
}

// changeMoveCommand is "switchyard change reject|cancel ID": move the
// request with move ((*client.Client).RejectChange, ...), for --reason.
func changeMoveCommand(done string, move func(*client.Client, context.Context, int64, string) (*client.ChangeRequest, error)) func(fs *flag.FlagSet, c *cli) runner {
	return func(fs *flag.FlagSet, c *cli) runner {
		var (
			api    apiFlags
			out    outputFlag
			reason string
		)
		fs.StringVar(&reason, "reason", "", "`why`, for the audit log (required)")
		api.bind(fs, c.getenv)
		out.bind(fs)
		return func(ctx context.Context, args []string) error {
			id, err := changeID(args)
			if err != nil {
				return err
			}
			if strings.TrimSpace(reason) == "" {
				return usagef("--reason is required: say why, for the audit log")
			}
			cl, err := api.client("an admin")
			if err != nil {
				return err
			}
			cr, err := move(cl, ctx, id, reason)
			if err != nil {
				return err
			}
			return c.changeDone(out, done, cr)
		}
	}
}

// changeDone prints a change request after a transition: as JSON, or a
// line saying what was done and where it stands.
func (c *cli) changeDone(out outputFlag, done string, cr *client.ChangeRequest) error {
	if out.json {
		return writeJSON(c.stdout, cr)
	}
	fmt.Fprintln(c.stdout, c.paletteFor(c.stdout).green(done)+": "+changeLine(&cr.ChangeRequest))
	return nil
}

// changeListCommand is "switchyard change list".
func changeListCommand(fs *flag.FlagSet, c *cli) runner {
	var (
		api apiFlags
		out outputFlag
	)
	var state switchyard.ChangeState
	fs.Func("state", "only requests in this `state`: proposed, approved, applied, rejected, cancelled, expired or failed", func(s string) error {
		if state = switchyard.ChangeState(s); !state.Valid() {
			return fmt.Errorf("%q: use one of %v", s, switchyard.ChangeStates)
		}
		return nil
	})
	limit := fs.Int("limit", 20, "the most requests to list, newest first, 1 to 1000")
	api.bind(fs, c.getenv)
	out.bind(fs)
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if *limit < 1 || *limit > auditPageLimit {
			return usagef("--limit %d: use 1 to %d", *limit, auditPageLimit)
		}
		cl, err := api.client("a viewer or admin")
		if err != nil {
			return err
		}
		page, err := cl.ChangeRequests(ctx, client.ChangeQuery{State: state, Limit: *limit})
		if err != nil {
			return err
		}
		if out.json {
			if page.Changes == nil {
				page.Changes = []switchyard.ChangeRequest{}
			}
			return writeJSON(c.stdout, page.Changes)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tACTION\tTARGET\tPROPOSER\tAPPROVALS\tAPPLY AT\tREASON")
		for _, cr := range page.Changes {
			applyAt := "once approved"
			if cr.ApplyAt != nil {
				applyAt = formatTime(*cr.ApplyAt)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", cr.ID, cr.State, cr.Action, cr.Target, cr.Proposer,
				len(cr.Approvals), cr.ApprovalsRequired, applyAt, cr.Reason)
		}
		return tw.Flush()
	}
}

// changeShowCommand is "switchyard change show ID".
func changeShowCommand(fs *flag.FlagSet, c *cli) runner {
	var (
		api apiFlags
		out outputFlag
	)
	api.bind(fs, c.getenv)
	out.bind(fs)
	return func(ctx context.Context, args []string) error {
		id, err := changeID(args)
		if err != nil {
			return err
		}
		cl, err := api.client("a viewer or admin")
		if err != nil {
			return err
		}
		cr, err := cl.ChangeRequest(ctx, id)
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, cr)
		}
		c.printChange(c.stdout, cr)
		return nil
	}
}

// printChange writes a change request to w for people: where it stands,
// who asked for it and why, its history, and what it makes of the runtime.
func (c *cli) printChange(w io.Writer, cr *client.ChangeRequest) {
	p := c.paletteFor(w)
	fmt.Fprintln(w, p.bold(changeLine(&cr.ChangeRequest)))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "proposed by\t%s at %s, on revision %d: %s\n", cr.Proposer, formatTime(cr.CreatedAt), cr.BaseRevision, cr.Reason)
	fmt.Fprintf(tw, "phrase\t%s\n", cr.Phrase)
	for _, e := range cr.History {
		line := fmt.Sprintf("%s by %s at %s: %s", e.Action, e.Actor, formatTime(e.At), e.Reason)
		if e.Note != "" {
			line += " (" + e.Note + ")"
		}
		fmt.Fprintf(tw, "history\t%s\n", line)
	}
	tw.Flush()
	switch {
	case cr.Problem != "":
		fmt.Fprintln(w, p.red("it would be refused now: "+cr.Problem))
	case cr.Diff != nil:
		fmt.Fprintf(w, "From revision %d it makes:\n", cr.Diff.Before.Revision)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range diffEffects(cr.Diff) {
			fmt.Fprintf(tw, "  %s\t%s\t→ %s\n", e.name, p.plain(e.before), p.yellow(e.after))
		}
		tw.Flush()
	}
}

// diffEffects lists what a change request's diff makes different: the
// system flags, the profile and the modules as they resolve, then any
// other flag it changes.
func diffEffects(d *client.ChangeDiff) []effect {
	var out []effect
	listed := map[string]bool{}
	add := func(name, before, after string) {
		listed[name] = true
		if before != after {
			out = append(out, effect{name, before, after})
		}
	}
	for _, name := range switchyard.SystemFlagNames {
		a, _ := d.Before.System.Get(name)
		b, _ := d.After.System.Get(name)
		add(name, onOff(a), onOff(b))
	}
	add(switchyard.ProfileKey, d.Before.Profile, d.After.Profile)
	for _, key := range slices.Sorted(maps.Keys(d.After.Modules)) {
		a, b := d.Before.Modules[key], d.After.Modules[key]
		add(switchyard.ModuleFlagKey(key), a.Version, b.Version)
		add(switchyard.ModuleEnabledFlagKey(key), onOff(a.Enabled), onOff(b.Enabled))
	}
	for _, name := range d.Changed {
		if !listed[name] {
			out = append(out, effect{name, "…", "changed"})
		}
	}
	return out
}

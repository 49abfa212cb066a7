package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/client"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// writeFlags are the flags of every command that changes the runtime.
type writeFlags struct {
	api            apiFlags
	out            outputFlag
	reason, phrase string
	ifRevision     int64
	idempotencyKey string
}

func (w *writeFlags) bind(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&w.reason, "reason", "", "`why` the change is made, for the audit log (required)")
	fs.StringVar(&w.phrase, "phrase", "", "the confirmation `phrase`, for scripts; without it you are asked to type it")
	fs.Int64Var(&w.ifRevision, "if-revision", 0, "apply the change only if the runtime is still at revision `N` (If-Match); default: the revision shown before the change")
	fs.StringVar(&w.idempotencyKey, "idempotency-key", "", "the `key` of a change to send again, as printed when its outcome was unknown; default: a new key")
	w.api.bind(fs, getenv)
	w.out.bind(fs)
}

// effect is one value a change makes different, named as applications
// read it (EXAM_MODE, runtime.profile, module.mastery), or an override.
type effect struct {
	name, before, after string
}

// change is one change an operator command makes.
type change struct {
	// phrase confirms it.
	phrase string
	// effects says what it makes different, from the status; an error
	// says why the server would refuse it, and nothing is sent.
	effects func(ctx context.Context, api *client.Client, st *client.Status) ([]effect, error)
	// apply makes it, and returns the server's answer and a line saying
	// what was done.
	apply func(ctx context.Context, api *client.Client, w client.Write) (answer any, done string, err error)
	// proposed says the change is proposed as a change request, not
	// applied: the prompt and the answer say so.
	proposed bool
}

// makeChange shows what ch makes different, asks for its phrase (unless
// --phrase gives it) and makes (or proposes) it, based on the revision it
// showed (or --if-revision) and with an idempotency key its retries share.
// The before-and-after and the prompt go to stderr; the answer, as text
// or JSON, to stdout.
func (c *cli) makeChange(ctx context.Context, w *writeFlags, ch change) error {
	if strings.TrimSpace(w.reason) == "" {
		return usagef("--reason is required: say why the change is made, for the audit log")
	}
	api, err := w.api.client("an admin")
	if err != nil {
		return err
	}
	st, err := api.Status(ctx)
	if err != nil {
		return fmt.Errorf("read the runtime before the change: %w", err)
	}
	effects, err := ch.effects(ctx, api, st)
	if err != nil {
		return fmt.Errorf("refused before sending, nothing was sent: %w", err)
	}
	revision := st.Revision
	if w.ifRevision != 0 {
		revision = w.ifRevision
	}
	verb, done := "apply", "applied"
	if ch.proposed {
		verb, done = "propose", "proposed"
	}
	c.showEffects(st.Revision, effects)
	phrase, err := c.confirm(ctx, verb, ch.phrase, w.phrase)
	if err != nil {
		return err
	}
	key := w.idempotencyKey
	if key == "" {
		key = client.NewIdempotencyKey()
	}
	answer, what, err := ch.apply(ctx, api, client.Write{Phrase: phrase, Reason: w.reason, IfRevision: revision, IdempotencyKey: key})
	if err != nil {
		return unknownOutcome(err, key, revision)
	}
	if w.out.json {
		return writeJSON(c.stdout, answer)
	}
	fmt.Fprintln(c.stdout, c.paletteFor(c.stdout).green(done)+": "+what)
	return nil
}

// unknownOutcome adds to the error of a change that may have been applied
// how to find out: send it again as it was, with its key and revision,
// which applies it at most once and answers its outcome.
func unknownOutcome(err error, key string, revision int64) error {
	again := fmt.Sprintf("--idempotency-key %s --if-revision %d", key, revision)
	switch code := switchyard.ErrorCode(err); {
	case errors.Is(err, client.ErrUnreachable), code == switchyard.CodeOutcomeUnknown,
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w\nthe change may or may not be applied: run the command again with %s, which applies it at most once", err, again)
	case code == switchyard.CodeUnavailable:
		return fmt.Errorf("%w\nnothing was applied: run the command again later (with %s)", err, again)
	}
	return err
}

// showEffects writes to stderr what a change to revision makes different.
func (c *cli) showEffects(revision int64, effects []effect) {
	p := c.paletteFor(c.stderr)
	fmt.Fprintf(c.stderr, "At revision %d this change makes:\n", revision)
	if len(effects) == 0 {
		fmt.Fprintln(c.stderr, "  no difference: the runtime is already so")
		return
	}
	tw := tabwriter.NewWriter(c.stderr, 0, 4, 2, ' ', 0)
	for _, e := range effects {
		fmt.Fprintf(tw, "  %s\t%s\t→ %s\n", e.name, p.plain(e.before), p.yellow(e.after))
	}
	tw.Flush()
}

// mutationEffects computes what m makes different in the runtime of st,
// with the mutation and the resolver the server uses: the server applies
// m to the revision st shows, and refuses it when Apply does.
func mutationEffects(st *client.Status, m switchyard.Mutation) ([]effect, error) {
	cur := &switchyard.Revision{
		Number:        st.Revision,
		CreatedAt:     st.CreatedAt,
		System:        st.Flags,
		Catalog:       st.Catalog,
		Profiles:      st.Profiles,
		ActiveProfile: st.Profile,
		Overrides:     st.Overrides,
	}
	next, err := m.Apply(cur, time.Now())
	if err != nil {
		return nil, err
	}
	return runtimeEffects(cur, next), nil
}

// runtimeEffects lists what differs between the runtimes of a and b.
func runtimeEffects(a, b *switchyard.Revision) []effect {
	ra, rb := evaluator.Resolve(a), evaluator.Resolve(b)
	var out []effect
	for _, name := range switchyard.SystemFlagNames {
		va, _ := ra.System.Get(name)
		vb, _ := rb.System.Get(name)
		if va != vb {
			out = append(out, effect{name, onOff(va), onOff(vb)})
		}
	}
	if ra.Profile != rb.Profile {
		out = append(out, effect{switchyard.ProfileKey, ra.Profile, rb.Profile})
	}
	for _, m := range b.Catalog {
		ma, mb := ra.Modules[m.Key], rb.Modules[m.Key]
		if ma.Version != mb.Version {
			out = append(out, effect{switchyard.ModuleFlagKey(m.Key), ma.Version, mb.Version})
		}
		if ma.Enabled != mb.Enabled {
			out = append(out, effect{switchyard.ModuleEnabledFlagKey(m.Key), onOff(ma.Enabled), onOff(mb.Enabled)})
		}
		oa, okA := a.Overrides[m.Key]
		ob, okB := b.Overrides[m.Key]
		if da, db := describeOverride(oa, okA), describeOverride(ob, okB); da != db {
			out = append(out, effect{"override " + m.Key, da, db})
		}
	}
	return out
}

// describeOverride says what an override sets.
func describeOverride(o switchyard.Override, ok bool) string {
	if !ok {
		return "none"
	}
	var parts []string
	if o.Version != nil {
		parts = append(parts, "version "+*o.Version)
	}
	if o.Enabled != nil {
		parts = append(parts, onOff(*o.Enabled))
	}
	return strings.Join(parts, ", ")
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// parseOnOff reads the on|off argument of a switch.
func parseOnOff(args []string) (bool, error) {
	if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
		return false, usagef("want on or off")
	}
	return args[0] == "on", nil
}

// appliedLine says what a change applied: the revision it made and its
// audit entry.
func appliedLine(a *client.Applied) string {
	return fmt.Sprintf("revision %d (audit entry %d)", a.Status.Revision, a.AuditSeq)
}

// systemFlagCommand is "switchyard exam-mode|freeze|admin-freeze on|off".
func systemFlagCommand(flagName string) func(fs *flag.FlagSet, c *cli) runner {
	return func(fs *flag.FlagSet, c *cli) runner {
		var w writeFlags
		w.bind(fs, c.getenv)
		return func(ctx context.Context, args []string) error {
			on, err := parseOnOff(args)
			if err != nil {
				return err
			}
			return c.makeChange(ctx, &w, change{
				phrase: switchyard.SystemFlagPhrase(flagName, on),
				effects: func(_ context.Context, _ *client.Client, st *client.Status) ([]effect, error) {
					return mutationEffects(st, switchyard.SetSystemFlag(flagName, on))
				},
				apply: func(ctx context.Context, api *client.Client, cw client.Write) (any, string, error) {
					a, err := api.SetSystemFlag(ctx, flagName, on, cw)
					if err != nil {
						return nil, "", err
					}
					return a, fmt.Sprintf("%s %s at %s", flagName, onOff(on), appliedLine(a)), nil
				},
			})
		}
	}
}

// profileCommand is "switchyard profile set NAME".
func profileCommand(fs *flag.FlagSet, c *cli) runner {
	var w writeFlags
	w.bind(fs, c.getenv)
	return func(ctx context.Context, args []string) error {
		if err := wantArgs(args, "NAME"); err != nil {
			return err
		}
		name := args[0]
		return c.makeChange(ctx, &w, change{
			phrase: switchyard.ProfilePhrase(name),
			effects: func(_ context.Context, _ *client.Client, st *client.Status) ([]effect, error) {
				return mutationEffects(st, switchyard.SetActiveProfile(name))
			},
			apply: func(ctx context.Context, api *client.Client, cw client.Write) (any, string, error) {
				a, err := api.SetProfile(ctx, name, cw)
				if err != nil {
					return nil, "", err
				}
				return a, fmt.Sprintf("profile %s at %s", name, appliedLine(a)), nil
			},
		})
	}
}

// overrideSetCommand is "switchyard override set MODULE VERSION".
func overrideSetCommand(fs *flag.FlagSet, c *cli) runner {
	var w writeFlags
	w.bind(fs, c.getenv)
	return func(ctx context.Context, args []string) error {
		if err := wantArgs(args, "MODULE", "VERSION"); err != nil {
			return err
		}
		module, version := args[0], args[1]
		return c.override(ctx, &w, module, switchyard.Override{Version: &version}, switchyard.OverrideVersionPhrase(module, version))
	}
}

// overrideEnabledCommand is "switchyard override enable|disable MODULE".
func overrideEnabledCommand(on bool) func(fs *flag.FlagSet, c *cli) runner {
	return func(fs *flag.FlagSet, c *cli) runner {
		var w writeFlags
		w.bind(fs, c.getenv)
		return func(ctx context.Context, args []string) error {
			if err := wantArgs(args, "MODULE"); err != nil {
				return err
			}
			return c.override(ctx, &w, args[0], switchyard.Override{Enabled: &on}, switchyard.ModuleEnabledPhrase(args[0], on))
		}
	}
}

// override sets a module's override o, confirmed by phrase.
func (c *cli) override(ctx context.Context, w *writeFlags, module string, o switchyard.Override, phrase string) error {
	return c.makeChange(ctx, w, change{
		phrase: phrase,
		effects: func(_ context.Context, _ *client.Client, st *client.Status) ([]effect, error) {
			return mutationEffects(st, switchyard.SetOverride(module, o.Version, o.Enabled))
		},
		apply: func(ctx context.Context, api *client.Client, cw client.Write) (any, string, error) {
			a, err := api.SetOverride(ctx, module, o, cw)
			if err != nil {
				return nil, "", err
			}
			return a, fmt.Sprintf("override of %s (%s) at %s", module, describeOverride(o, true), appliedLine(a)), nil
		},
	})
}

// overrideClearCommand is "switchyard override clear MODULE".
func overrideClearCommand(fs *flag.FlagSet, c *cli) runner {
	var w writeFlags
	w.bind(fs, c.getenv)
	return func(ctx context.Context, args []string) error {
		if err := wantArgs(args, "MODULE"); err != nil {
			return err
		}
		module := args[0]
		return c.makeChange(ctx, &w, change{
			phrase: switchyard.ClearOverridePhrase(module),
			effects: func(_ context.Context, _ *client.Client, st *client.Status) ([]effect, error) {
				return mutationEffects(st, switchyard.ClearOverride(module))
			},
			apply: func(ctx context.Context, api *client.Client, cw client.Write) (any, string, error) {
				a, err := api.ClearOverride(ctx, module, cw)
				if err != nil {
					return nil, "", err
				}
				return a, fmt.Sprintf("override of %s cleared at %s", module, appliedLine(a)), nil
			},
		})
	}
}

// modeCommand is "switchyard mode set demo|production [--force]".
func modeCommand(fs *flag.FlagSet, c *cli) runner {
	var w writeFlags
	w.bind(fs, c.getenv)
	force := fs.Bool("force", false, "with production's requirements missing, record the switch for a restart instead of refusing it")
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 || (args[0] != switchyard.ModeDemo && args[0] != switchyard.ModeProduction) {
			return usagef("want demo or production")
		}
		target := args[0]
		return c.makeChange(ctx, &w, change{
			phrase: switchyard.ModeSwitchPhrase(target),
			effects: func(ctx context.Context, api *client.Client, _ *client.Status) ([]effect, error) {
				p, err := api.SystemMode(ctx)
				if err != nil {
					return nil, err
				}
				return modeEffects(p, target, *force)
			},
			apply: func(ctx context.Context, api *client.Client, cw client.Write) (any, string, error) {
				t, err := api.SwitchMode(ctx, target, *force, cw)
				if err != nil {
					return nil, "", err
				}
				if t.RestartRequired {
					return t, fmt.Sprintf("%s mode recorded for a restart (audit entry %d); still serving %s, missing %s",
						target, t.AuditSeq, t.Posture.Mode, requirementNames(t.Missing)), nil
				}
				return t, fmt.Sprintf("switched to %s mode (audit entry %d)", t.Posture.Mode, t.AuditSeq), nil
			},
		})
	}
}

// modeEffects says what a switch to target makes different, from the
// posture; a switch the server would refuse is an error.
func modeEffects(p *client.Posture, target string, force bool) ([]effect, error) {
	switch {
	case p.Mode == target:
		return nil, switchyard.Errorf(switchyard.CodeInvalidRequest, "the server already serves %s mode", target)
	case !p.AllowLiveSwitch:
		return nil, switchyard.Errorf(switchyard.CodeLiveSwitchDisabled,
			"this server's process does not switch modes live: restart it in %s mode, or with SWITCHYARD_ALLOW_LIVE_SWITCH=true", target)
	case target == switchyard.ModeProduction && len(p.Missing) > 0 && !force:
		return nil, switchyard.Errorf(switchyard.CodeRequirementsMissing,
			"production mode needs %s (--force records the switch for a restart)", requirementNames(p.Missing))
	case target == switchyard.ModeProduction && len(p.Missing) > 0:
		return []effect{{switchyard.SystemModeKey, p.Mode, p.Mode + " until a restart, which starts in production (missing " + requirementNames(p.Missing) + ")"}}, nil
	}
	return []effect{{switchyard.SystemModeKey, p.Mode, target}}, nil
}

func requirementNames(reqs []client.Requirement) string {
	names := make([]string, len(reqs))
	for i, r := range reqs {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

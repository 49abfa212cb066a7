package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/client"
)

// statusView is what switchyard status shows: the runtime, the system
// mode and the readiness, as the server answered them.
type statusView struct {
	Runtime    *client.Status    `json:"runtime"`
	SystemMode *client.Posture   `json:"system_mode"`
	Readiness  *client.Readiness `json:"readiness"`
}

// statusCommand is "switchyard status".
func statusCommand(fs *flag.FlagSet, c *cli) runner {
	var (
		api apiFlags
		out outputFlag
	)
	api.bind(fs, c.getenv)
	out.bind(fs)
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		cl, err := api.client("a viewer or admin")
		if err != nil {
			return err
		}
		var v statusView
		if v.Readiness, err = cl.Readiness(ctx); err != nil {
			return err
		}
		if v.Runtime, err = cl.Status(ctx); err != nil {
			return fmt.Errorf("%w\nreadiness: %s %s", err, v.Readiness.Status, v.Readiness.Reason)
		}
		if v.SystemMode, err = cl.SystemMode(ctx); err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, v)
		}
		c.printStatus(v)
		return nil
	}
}

// printStatus writes the status for people: the runtime's switches and
// profile, the mode and the readiness, then every module as it resolves,
// then the next steps of change requests, if any.
func (c *cli) printStatus(v statusView) {
	p := c.paletteFor(c.stdout)
	st, mode, ready := v.Runtime, v.SystemMode, v.Readiness
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "revision\t%s\n", p.plain(fmt.Sprintf("%d (%s)", st.Revision, st.CreatedAt.UTC().Format(time.RFC3339))))
	readiness := p.green(ready.Status)
	switch {
	case !ready.Ready:
		readiness = p.red("not ready: " + ready.Reason)
	case ready.Reason != "":
		readiness = p.yellow(ready.Status + ": " + ready.Reason)
	}
	fmt.Fprintf(tw, "ready\t%s\n", readiness)
	setBy := "set by " + mode.SetBy + " at " + mode.SetAt.UTC().Format(time.RFC3339)
	if mode.Reason != "" {
		setBy += ": " + mode.Reason
	}
	fmt.Fprintf(tw, "mode\t%s\n", p.plain(mode.Mode+" ("+setBy+")"))
	if mode.RestartRequired {
		fmt.Fprintf(tw, "\t%s\n", p.yellow(mode.DesiredMode+" mode recorded for a restart"))
	}
	if len(mode.Missing) > 0 {
		fmt.Fprintf(tw, "\t%s\n", p.plain("production needs: "+requirementNames(mode.Missing)))
	}
	for _, name := range switchyard.SystemFlagNames {
		on, _ := st.Flags.Get(name)
		value := p.plain("off")
		if on {
			value = p.yellow("ON")
		}
		fmt.Fprintf(tw, "%s\t%s\n", name, value)
	}
	fmt.Fprintf(tw, "profile\t%s\n", p.plain(st.Profile))
	if st.Degraded != "" {
		fmt.Fprintf(tw, "degraded\t%s\n", p.yellow(st.Degraded))
	}
	tw.Flush()
	fmt.Fprintln(c.stdout)
	tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "MODULE\t%s\t%s\t%s\n", p.plain("VERSION"), p.plain("ENABLED"), p.plain("FROM"))
	for _, key := range slices.Sorted(maps.Keys(st.Modules)) {
		m := st.Modules[key]
		enabled, from := p.plain("on"), p.plain(string(m.Source))
		if !m.Enabled {
			enabled = p.red("off")
		}
		if o, ok := st.Overrides[key]; ok {
			from = p.yellow("override (" + describeOverride(o, true) + ")")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", key, p.plain(m.Version), enabled, from)
	}
	tw.Flush()
	if len(st.Scheduled) == 0 {
		return
	}
	fmt.Fprintln(c.stdout)
	tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SCHEDULED\t%s\t%s\t%s\t%s\n", p.plain("CHANGE"), p.plain("STEP"), p.plain("ACTION"), p.plain("STATE"))
	for _, s := range st.Scheduled {
		state := p.plain(string(s.State))
		if s.Held {
			state = p.yellow(string(s.State) + ", held by ADMIN_FREEZE")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", formatTime(s.At), p.plain(strconv.FormatInt(s.Change, 10)), p.plain(s.Step),
			p.plain(s.Action+" "+s.Target), state)
	}
	tw.Flush()
}

// sessionView is what switchyard session show shows: a session's pin and
// the live runtime beside it.
type sessionView struct {
	Session *switchyard.Snapshot `json:"session"`
	Live    *client.Status       `json:"live"`
}

// sessionCommand is "switchyard session show ID".
func sessionCommand(fs *flag.FlagSet, c *cli) runner {
	var (
		api apiFlags
		out outputFlag
	)
	api.bind(fs, c.getenv)
	out.bind(fs)
	return func(ctx context.Context, args []string) error {
		if err := wantArgs(args, "ID"); err != nil {
			return err
		}
		cl, err := api.client("a viewer or admin")
		if err != nil {
			return err
		}
		var v sessionView
		if v.Session, err = cl.Session(ctx, args[0]); err != nil {
			return fmt.Errorf("session %s: %w", args[0], err)
		}
		if v.Live, err = cl.Status(ctx); err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, v)
		}
		c.printSession(v)
		return nil
	}
}

// printSession writes a session's pinned values beside the live ones, for
// people; a value that differs is marked.
func (c *cli) printSession(v sessionView) {
	p := c.paletteFor(c.stdout)
	s, live := v.Session, v.Live
	fmt.Fprintf(c.stdout, "session %s", s.SessionID)
	if s.UserID != "" {
		fmt.Fprintf(c.stdout, " (user %s)", s.UserID)
	}
	fmt.Fprintf(c.stdout, ": pinned to revision %d at %s, expires %s\n", s.Revision,
		s.CreatedAt.UTC().Format(time.RFC3339), s.ExpiresAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(c.stdout, "at its start: EXAM_MODE %s, FREEZE_UPDATES %s\n\n", onOff(s.ExamModeAtStart), onOff(s.FreezeUpdatesAtStart))
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "FLAG\t%s\t%s\n", p.plain(fmt.Sprintf("PINNED (%d)", s.Revision)), p.plain(fmt.Sprintf("LIVE (%d)", live.Revision)))
	row := func(key, pinned, now string) {
		fmt.Fprintf(tw, "%s\t%s\t%s", key, p.plain(pinned), p.plain(now))
		if pinned != now {
			fmt.Fprint(tw, "\t"+p.yellow("differs"))
		}
		fmt.Fprintln(tw)
	}
	row(switchyard.ProfileKey, s.Profile, live.Profile)
	for _, key := range slices.Sorted(maps.Keys(s.Modules)) {
		pinned, now := s.Modules[key], live.Modules[key]
		row(switchyard.ModuleFlagKey(key), pinned.Version, now.Version)
		row(switchyard.ModuleEnabledFlagKey(key), onOff(pinned.Enabled), onOff(now.Enabled))
	}
	tw.Flush()
}

// evalCommand is "switchyard eval FLAG [key=value ...]".
func evalCommand(fs *flag.FlagSet, c *cli) runner {
	var (
		api apiFlags
		out outputFlag
	)
	contextJSON := fs.String("context", "", `evaluation context as a JSON object, e.g. '{"targetingKey": "learner-9"}'; key=value arguments add to it`)
	api.bind(fs, c.getenv)
	out.bind(fs)
	return func(ctx context.Context, args []string) error {
		if len(args) == 0 {
			return usagef("want FLAG [key=value ...]")
		}
		evalCtx, err := evaluationContext(*contextJSON, args[1:])
		if err != nil {
			return err
		}
		cl, err := api.client("")
		if err != nil {
			return err
		}
		ev, err := cl.Evaluate(ctx, args[0], evalCtx)
		if err != nil {
			return err
		}
		if out.json {
			if err := writeJSON(c.stdout, ev); err != nil {
				return err
			}
		} else {
			c.printEvaluation(ev)
		}
		if ev.ErrorCode != "" {
			return fmt.Errorf("%s: %s", ev.ErrorCode, ev.ErrorDetails)
		}
		return nil
	}
}

// evaluationContext builds the context of an evaluation: the --context
// object, then each key=value, whose value is read as JSON when it is
// JSON (30, true, "30", {"a": 1}) and as a string otherwise.
func evaluationContext(object string, pairs []string) (map[string]any, error) {
	evalCtx := map[string]any{}
	if object != "" {
		if err := json.Unmarshal([]byte(object), &evalCtx); err != nil || evalCtx == nil {
			return nil, usagef("--context must be a JSON object: %v", err)
		}
	}
	for _, pair := range pairs {
		key, value, ok := strings.Cut(pair, "=")
		if !ok || key == "" {
			return nil, usagef("%q: want key=value", pair)
		}
		var v any
		if json.Unmarshal([]byte(value), &v) != nil {
			v = value
		}
		evalCtx[key] = v
	}
	return evalCtx, nil
}

// printEvaluation writes an evaluation for people.
func (c *cli) printEvaluation(ev *client.Evaluation) {
	p := c.paletteFor(c.stdout)
	if ev.ErrorCode != "" {
		fmt.Fprintf(c.stdout, "%s: %s\n", ev.Key, p.red(ev.ErrorCode))
		return
	}
	value := "no value: the caller's default applies"
	if ev.Value != nil {
		v, _ := json.Marshal(ev.Value)
		value = string(v)
	}
	fmt.Fprintf(c.stdout, "%s = %s\n", ev.Key, p.bold(value))
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "reason\t%s\n", ev.Reason)
	if ev.Variant != "" {
		fmt.Fprintf(tw, "variant\t%s\n", ev.Variant)
	}
	for _, k := range slices.Sorted(maps.Keys(ev.Metadata)) {
		v, _ := json.Marshal(ev.Metadata[k])
		fmt.Fprintf(tw, "metadata %s\t%s\n", k, v)
	}
	tw.Flush()
}

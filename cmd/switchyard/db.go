package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/switchyard-dev/switchyard/store/postgres"
)

// databaseURL parses the flags of a command that only talks to the
// database: --database-url over SWITCHYARD_DATABASE_URL.
func databaseURL(name string, args []string, getenv func(string) string, stderr io.Writer) (string, []string, error) {
	fs := flag.NewFlagSet("switchyard "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("database-url", getenv("SWITCHYARD_DATABASE_URL"), "Postgres URL [SWITCHYARD_DATABASE_URL]")
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	if *url == "" {
		return "", nil, errors.New("no database: set --database-url or SWITCHYARD_DATABASE_URL")
	}
	return *url, fs.Args(), nil
}

// migrate runs "switchyard migrate up|status".
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		return errors.New("usage: switchyard migrate up|status [--database-url URL]")
	}
	url, rest, err := databaseURL("migrate "+args[0], args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments: %v", rest)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if args[0] == "up" {
		applied, err := postgres.Migrate(ctx, url, postgres.WithLogger(logger))
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "database is up to date")
		}
		for _, name := range applied {
			fmt.Fprintln(stdout, "applied", name)
		}
		return nil
	}
	states, err := postgres.MigrationStatus(ctx, url, postgres.WithLogger(logger))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT")
	for _, s := range states {
		state, at := "pending", ""
		if s.Applied {
			state, at = "applied", s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Version, s.Name, state, at)
	}
	return tw.Flush()
}

// auditCmd runs "switchyard audit verify": it walks the hash chain, prints
// the verification as JSON and fails when the chain is broken.
func auditCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: switchyard audit verify [--database-url URL]")
	}
	url, rest, err := databaseURL("audit verify", args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments: %v", rest)
	}
	st, err := postgres.Open(ctx, url, postgres.WithLogger(slog.New(slog.NewTextHandler(stderr, nil))))
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := st.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(stdout, string(out))
	if !v.OK {
		return fmt.Errorf("audit chain broken at entry %d: %s", v.FirstBad, v.Problem)
	}
	return nil
}

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"text/tabwriter"

	"github.com/switchyard-dev/switchyard/store/postgres"
)

// databaseFlag is --database-url over SWITCHYARD_DATABASE_URL, the flag of
// a command that talks to the database. The environment is read after
// parsing, not made the flag's default, so help never prints a URL that
// may hold a password.
type databaseFlag struct {
	url    string
	getenv func(string) string
}

func (d *databaseFlag) bind(fs *flag.FlagSet, getenv func(string) string, help string) {
	d.getenv = getenv
	fs.StringVar(&d.url, "database-url", "", help+" [SWITCHYARD_DATABASE_URL]")
}

// value is the URL of the command line, else of the environment; empty
// when neither has one.
func (d *databaseFlag) value() string {
	if d.url != "" {
		return d.url
	}
	return d.getenv("SWITCHYARD_DATABASE_URL")
}

// migrateCommand is "switchyard migrate up" (up set) or "switchyard
// migrate status".
func migrateCommand(up bool) func(fs *flag.FlagSet, c *cli) runner {
	return func(fs *flag.FlagSet, c *cli) runner {
		var db databaseFlag
		db.bind(fs, c.getenv, "Postgres `URL`")
		return func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			url := db.value()
			if url == "" {
				return usagef("no database: set --database-url or SWITCHYARD_DATABASE_URL")
			}
			logger := slog.New(slog.NewTextHandler(c.stderr, nil))
			if up {
				applied, err := postgres.Migrate(ctx, url, postgres.WithLogger(logger))
				if err != nil {
					return err
				}
				if len(applied) == 0 {
					fmt.Fprintln(c.stdout, "database is up to date")
				}
				for _, name := range applied {
					fmt.Fprintln(c.stdout, "applied", name)
				}
				return nil
			}
			states, err := postgres.MigrationStatus(ctx, url, postgres.WithLogger(logger))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
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
	}
}

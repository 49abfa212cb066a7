package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// reconnectInterval is how often a replica started without its database
// tries to reach it again.
const reconnectInterval = 5 * time.Second

// probeTimeout bounds one reachability probe: a blackholed address or a
// hung server must not hold the start for pgx's default of minutes. A
// database that answers at all completes its handshake far sooner.
const probeTimeout = 3 * time.Second

// errUnreachable marks a database that did not answer at all (refused,
// timed out, no route), as opposed to one that answered with an error
// (wrong credentials, no schema), which no waiting fixes.
var errUnreachable = errors.New("the database is unreachable")

// probeDatabase connects to url once and reports errUnreachable when
// nothing answered there. A URL that does not parse, or a server that
// answered with an error, returns nil: the normal start path then reports
// the real problem and stops.
func probeDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return nil
	}
	return fmt.Errorf("%w: %v", errUnreachable, err)
}

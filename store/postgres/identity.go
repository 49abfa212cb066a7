package postgres

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

var _ store.Identifier = (*Store)(nil)

// Address is where the database URL points, as store.Identity records it:
// every host and port it may connect to, the database and the
// search_path (installations may share a database, one schema each), e.g.
// "db1:5432,db2:5432/switchyard?search_path=team_a". It leaves out the
// user, the password and every other setting, and needs no connection.
func Address(url string) (string, error) {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		// pgx's message masks the URL's password.
		return "", switchyard.Errorf(switchyard.CodeInvalidRequest, "database URL: %v", err)
	}
	// pgx lists each host once per TLS setting it tries (sslmode=prefer
	// tries TLS, then plain): the address lists each host once.
	hosts := []string{net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))}
	for _, f := range cfg.Fallbacks {
		if h := net.JoinHostPort(f.Host, strconv.Itoa(int(f.Port))); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	addr := strings.Join(hosts, ",") + "/" + cfg.Database
	if sp := cfg.RuntimeParams["search_path"]; sp != "" {
		addr += "?search_path=" + sp
	}
	return addr, nil
}

// Identity implements store.Identifier: the URL's Address, and the
// installation the database said it is when the store was opened.
func (s *Store) Identity() store.Identity { return s.identity }

// installation asks the database which installation it is: the cluster's
// system identifier (kept by a standby promoted in a failover, new for a
// cluster made by initdb or restored from a logical dump), the database and
// the schema the store works in. When it cannot be read (a role denied
// pg_control_system) it is logged and left empty: the store still serves,
// and its last-known-good file is matched by address alone.
func (s *Store) installation(ctx context.Context) string {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var system, database, schema string
	err := s.pool.QueryRow(ctx, `SELECT system_identifier::text, current_database(), current_schema() FROM pg_control_system()`).
		Scan(&system, &database, &schema)
	if err != nil {
		s.cfg.log.Warn("cannot read the database's identity; the last-known-good file is matched by the database URL alone",
			"err", dbError("read the database's identity", err))
		return ""
	}
	return fmt.Sprintf("system %s, database %s, schema %s", system, database, schema)
}

package postgres

import (
	"regexp"
	"testing"
)

// The address of a database URL is what names the installation without
// reaching it: every host and port, the database and the search_path,
// never the user or the password.
func TestAddress(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"postgres://app:pw@db.internal:5432/switchyard?sslmode=disable", "db.internal:5432/switchyard"},
		{"postgres://app@db.internal/switchyard", "db.internal:5432/switchyard"},
		{"postgres://app@db1:5433,db2:5434/switchyard?search_path=team_a", "db1:5433,db2:5434/switchyard?search_path=team_a"},
		{"host=db.internal port=6432 dbname=switchyard user=app password=pw search_path=team_b", "db.internal:6432/switchyard?search_path=team_b"},
		{"postgres://app@[::1]:5432/switchyard", "[::1]:5432/switchyard"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got, err := Address(tt.url)
			if err != nil || got != tt.want {
				t.Fatalf("Address(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
			}
		})
	}
	if _, err := Address("postgres://%zz"); err == nil {
		t.Fatal("Address of a URL that does not parse = nil error")
	}
}

// An open store knows its address and the installation the database says
// it is: the cluster's system identifier, the database and its schema, so
// two installations sharing a database are told apart.
func TestIdentity(t *testing.T) {
	a, b := newFixture(t), newFixture(t)
	idA, idB := a.store.Identity(), b.store.Identity()
	addr, err := Address(a.url)
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^system [0-9]+, database [^,]+, schema ` + a.schema + `$`)
	if idA.Address != addr || !want.MatchString(idA.Installation) {
		t.Fatalf("Identity() = %+v, want address %q and an installation matching %s", idA, addr, want)
	}
	if idA.Address == idB.Address || idA.Installation == idB.Installation {
		t.Fatalf("two schemas of one database have identities %+v and %+v, want them told apart", idA, idB)
	}
}

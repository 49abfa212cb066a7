// Package migrations holds the numbered SQL migrations of the Postgres
// store. They are embedded in the binary, so `switchyard migrate` and
// `switchyard serve` always apply exactly the schema the code was built
// against; store/postgres runs them with goose under an advisory lock.
package migrations

import "embed"

// FS holds the migrations, named NNNNN_description.sql and applied in
// version order. A released file is never edited: a change is a new file.
//
//go:embed *.sql
var FS embed.FS

// Package migrations embeds the SQL schema migrations applied by `dashboard migrate`.
package migrations

import "embed"

// FS holds the goose migration files.
//
//go:embed *.sql
var FS embed.FS

package testenv

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestDatabaseFromCopiesTheTemplate checks that a copied database holds the template's rows, is
// a database of its own, and that the template is usable again once the copy is made.
func TestDatabaseFromCopiesTheTemplate(t *testing.T) {
	ctx := t.Context()
	conn := func(dsn string) *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	exec := func(dsn string, sql string) {
		t.Helper()
		c := conn(dsn)
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	count := func(dsn string) (n int) {
		t.Helper()
		c := conn(dsn)
		defer c.Close(ctx)
		if err := c.QueryRow(ctx, `SELECT count(*) FROM seeded`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	tmpl := Database(t)
	exec(tmpl, `CREATE TABLE seeded AS SELECT g AS id FROM generate_series(1, 1000) g`)
	first := DatabaseFrom(t, tmpl)
	second := DatabaseFrom(t, tmpl)
	if first == second || first == tmpl {
		t.Fatalf("copies share a URL: template %s, copies %s and %s", tmpl, first, second)
	}
	exec(first, `DELETE FROM seeded WHERE id > 10`)
	if n := count(first); n != 10 {
		t.Errorf("first copy holds %d rows after the delete, want 10", n)
	}
	if n := count(second); n != 1000 {
		t.Errorf("second copy holds %d rows, want the template's 1000", n)
	}
	if n := count(tmpl); n != 1000 {
		t.Errorf("template holds %d rows, want 1000", n)
	}
}

package testenv

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/store"
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

// TestStoreCopiesTheMigratedTemplate checks that Store's databases are migrated, are databases
// of their own, and are copies of the sealed template named for the embedded migrations.
func TestStoreCopiesTheMigratedTemplate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	first, firstURL := Store(t)
	second, secondURL := Store(t)
	if firstURL == secondURL {
		t.Fatalf("two stores share %s", firstURL)
	}
	for _, s := range []*store.Store{first, second} {
		have, want, err := s.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if have != want || want == 0 {
			t.Errorf("schema version %d, want %d", have, want)
		}
	}
	execIn(t, firstURL, `CREATE TABLE only_in_first ()`)
	var found bool
	c := connect(t, secondURL)
	if err := c.QueryRow(ctx, `SELECT to_regclass('only_in_first') IS NOT NULL`).Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found {
		t.Error("a table created in the first store's database is in the second's")
	}

	hash, err := migrationsHash()
	if err != nil {
		t.Fatal(err)
	}
	admin := connect(t, AdminDatabaseURL())
	var isTemplate, allowConn bool
	if err := admin.QueryRow(ctx, `SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1`,
		templatePrefix+hash).Scan(&isTemplate, &allowConn); err != nil {
		t.Fatalf("template %s: %v", templatePrefix+hash, err)
	}
	if !isTemplate || allowConn {
		t.Errorf("template is_template=%v allow_connections=%v, want true and false", isTemplate, allowConn)
	}
}

// connect opens a connection to dsn, closed when the test ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// execIn runs sql in the database at dsn.
func execIn(t *testing.T, dsn, sql string) {
	t.Helper()
	if _, err := connect(t, dsn).Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestStoreRebuildsADroppedTemplate checks that Store still works when the template this process
// made sure of has since been dropped, and that the template is back afterwards.
func TestStoreRebuildsADroppedTemplate(t *testing.T) {
	ctx := t.Context()
	Store(t) // this process has made sure of the template
	hash, err := migrationsHash()
	if err != nil {
		t.Fatal(err)
	}
	name := templatePrefix + hash
	admin := connect(t, AdminDatabaseURL())
	dropTemplate(t, admin)

	s, _ := Store(t)
	if have, want, err := s.SchemaVersion(ctx); err != nil || have != want {
		t.Errorf("schema version %d, %v; want %d", have, err, want)
	}
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		t.Errorf("template %s was not rebuilt", name)
	}
}

// TestProcessesBuildTheTemplateOnce checks that test processes starting together, with no
// template on the server, all get a migrated database: one builds the template and the others
// wait for it.
func TestProcessesBuildTheTemplateOnce(t *testing.T) {
	if os.Getenv("TRAWL_TESTENV_CHILD") == "1" {
		s, _ := Store(t)
		if have, want, err := s.SchemaVersion(t.Context()); err != nil || have != want {
			t.Fatalf("schema version %d, %v; want %d", have, err, want)
		}
		return
	}
	ctx := t.Context()
	admin := connect(t, AdminDatabaseURL())
	dropTemplate(t, admin)
	var wg sync.WaitGroup
	outs := make([][]byte, 4)
	errs := make([]error, len(outs))
	for i := range outs {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestProcessesBuildTheTemplateOnce$", "-test.count=1")
			cmd.Env = append(os.Environ(), "TRAWL_TESTENV_CHILD=1")
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v\n%s", i, err, outs[i])
		}
	}
}

// dropTemplate drops the template for the embedded migrations as another process would, under
// the lock.
func dropTemplate(t *testing.T, admin *pgx.Conn) {
	t.Helper()
	ctx := t.Context()
	hash, err := migrationsHash()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(templateLockKey)); err != nil {
		t.Fatal(err)
	}
	err = dropDatabases(ctx, admin, "SELECT $1::text", templatePrefix+hash)
	if _, uerr := admin.Exec(ctx, "SELECT pg_advisory_unlock($1)", int64(templateLockKey)); uerr != nil {
		t.Fatal(uerr)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestEnsureTemplateDropsAbandonedOnes checks that making sure of the template drops the
// templates of other migration sets unused for a day and build databases left by a process
// that died, and keeps a recently used template of another migration set.
func TestEnsureTemplateDropsAbandonedOnes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	admin := connect(t, AdminDatabaseURL())
	abandoned, recent, build := Name(templatePrefix+"x"), Name(templatePrefix+"x"), Name(buildPrefix+"x")
	for _, db := range []struct {
		name    string
		comment string
	}{
		{abandoned, time.Now().Add(-25 * time.Hour).UTC().Format(time.RFC3339)},
		{recent, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)},
		{build, ""},
	} {
		id := pgx.Identifier{db.name}.Sanitize()
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+id+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = admin.Exec(context.Background(), "ALTER DATABASE "+id+" WITH IS_TEMPLATE false")
			_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+id)
		})
		if db.comment != "" {
			if _, err := admin.Exec(ctx, "COMMENT ON DATABASE "+id+" IS "+quote(db.comment)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := ensureTemplate(ctx, admin, true); err != nil {
		t.Fatal(err)
	}
	rows, err := admin.Query(ctx, `SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname`,
		[]string{abandoned, recent, build})
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{recent}, got); diff != "" {
		t.Errorf("databases left (-want +got):\n%s", diff)
	}
}

// BenchmarkStore measures what a test pays for a migrated database of its own.
func BenchmarkStore(b *testing.B) {
	for b.Loop() {
		Store(b)
	}
}

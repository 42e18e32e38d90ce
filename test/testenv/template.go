package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trawlhq/trawl/migrations"
	"github.com/trawlhq/trawl/store"
)

// Store's databases are copies of a template database that holds every migration, so a test
// pays for a copy rather than for running the migrations. The template is shared by every test
// process on the server: its name carries a hash of the embedded migrations, so test binaries
// built from the same migrations share one, and a changed migration set gets a template of its
// own rather than a stale one. The first process to need it builds it under an advisory lock;
// the others wait on the lock and then find it. Nobody may connect to it, so copying it never
// fails on a forgotten connection.
const (
	// templatePrefix names finished templates; buildPrefix names one being built, so a build
	// that died half way never passes for a template.
	templatePrefix = "trawl_tmpl_"
	buildPrefix    = "trawl_tbuild_"
	// templateLockKey is the advisory lock, in the admin database, held while a template is
	// looked for, built or dropped.
	templateLockKey = 0x7472_6177_6c74_6d70 // "trawltmp"
	// templateUnusedFor is how long a template of another migration set (an older checkout's)
	// must have gone unused before a test process drops it.
	templateUnusedFor = 24 * time.Hour
)

// templateVersion changes when the way a template is built changes, which the migrations' hash
// does not see.
const templateVersion = "1"

var templateState struct {
	mu   sync.Mutex
	name string // the template this process has made sure of; "" until then
}

// migratedDatabase creates a database for this test as a copy of the migrated template, drops
// it when the test ends and returns its URL.
func migratedDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminDatabaseURL())
	if err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	defer admin.Close(ctx)
	tmpl, err := ensureTemplate(ctx, admin, false)
	if err != nil {
		t.Fatalf("template database: %v", err)
	}
	name := Name("trawl_t_")
	err = copyTemplate(ctx, admin, name, tmpl)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name
		// Someone dropped the template since this process made sure of it.
		if tmpl, err = ensureTemplate(ctx, admin, true); err == nil {
			err = copyTemplate(ctx, admin, name, tmpl)
		}
	}
	if err != nil {
		t.Fatalf("create database from template: %v", err)
	}
	dropAtEnd(t, name)
	return databaseURL(t, name)
}

// copyTemplate creates database name as a copy of tmpl. It retries for a while when the template
// is in use, which is brief: nobody can connect to a finished template.
func copyTemplate(ctx context.Context, admin *pgx.Conn, name, tmpl string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{tmpl}.Sanitize()
	for attempt := 0; ; attempt++ {
		_, err := admin.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || attempt >= 50 { // object_in_use
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ensureTemplate returns the name of the template for the embedded migrations, building it if
// the server has none. It asks the server once per process unless again is set.
func ensureTemplate(ctx context.Context, admin *pgx.Conn, again bool) (string, error) {
	templateState.mu.Lock()
	defer templateState.mu.Unlock()
	if templateState.name != "" && !again {
		return templateState.name, nil
	}
	templateState.name = ""
	hash, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := templatePrefix + hash
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(templateLockKey)); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer func() {
		// Closing the connection would release the lock too; the caller keeps it open.
		_, _ = admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(templateLockKey))
	}()
	// Only the lock holder builds, so any build database left is from a process that died.
	if err := dropDatabases(ctx, admin, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, buildPrefix); err != nil {
		return "", err
	}
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for %s: %w", name, err)
	}
	if !exists {
		if err := buildTemplate(ctx, admin, name); err != nil {
			return "", err
		}
	}
	// The time of last use lets a process with other migrations tell an abandoned template from
	// one another checkout is using.
	if _, err := admin.Exec(ctx, "COMMENT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" IS "+quote(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return "", fmt.Errorf("mark %s used: %w", name, err)
	}
	if err := dropUnusedTemplates(ctx, admin, name); err != nil {
		return "", err
	}
	templateState.name = name
	return name, nil
}

// buildTemplate creates, migrates and seals the template name. The caller holds the lock.
func buildTemplate(ctx context.Context, admin *pgx.Conn, name string) error {
	build := buildPrefix + name[len(templatePrefix):]
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{build}.Sanitize()); err != nil {
		return fmt.Errorf("create %s: %w", build, err)
	}
	u, err := url.Parse(AdminDatabaseURL())
	if err != nil {
		return fmt.Errorf("TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + build
	s, err := store.Open(ctx, u.String(), 1, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("open %s: %w", build, err)
	}
	_, err = s.Migrate(ctx)
	s.Close()
	if err != nil {
		return fmt.Errorf("migrate %s: %w", build, err)
	}
	// Sealed before it is renamed, so the finished name only ever names a finished template.
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{build}.Sanitize()+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("seal %s: %w", build, err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{build}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("rename %s: %w", build, err)
	}
	return nil
}

// dropUnusedTemplates drops the templates of other migration sets that have not been used for
// templateUnusedFor. The caller holds the lock.
func dropUnusedTemplates(ctx context.Context, admin *pgx.Conn, keep string) error {
	return dropDatabases(ctx, admin, `
		SELECT datname FROM pg_database
		WHERE starts_with(datname, $1) AND datname <> $2
		  AND coalesce(shobj_description(oid, 'pg_database'), '') < $3`,
		templatePrefix, keep, time.Now().Add(-templateUnusedFor).UTC().Format(time.RFC3339))
}

// dropDatabases drops the databases the query names.
func dropDatabases(ctx context.Context, admin *pgx.Conn, query string, args ...any) error {
	rows, err := admin.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("list databases: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list databases: %w", err)
	}
	for _, n := range names {
		id := pgx.Identifier{n}.Sanitize()
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+id+" WITH IS_TEMPLATE false"); err != nil {
			return fmt.Errorf("drop %s: %w", n, err)
		}
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop %s: %w", n, err)
		}
	}
	return nil
}

// migrationsHash is a short hash of the embedded migrations' names and contents.
func migrationsHash() (string, error) {
	h := sha256.New()
	h.Write([]byte("trawl testenv template " + templateVersion + "\n"))
	var paths []string
	err := fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("migrations: %w", err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		b, err := fs.ReadFile(migrations.FS, p)
		if err != nil {
			return "", fmt.Errorf("migrations: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", p, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// quote returns s as an SQL string literal.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

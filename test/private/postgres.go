package private

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

// Postgres is a private PostgreSQL cluster.
type Postgres struct {
	t    testing.TB
	dir  string
	bin  string
	Port int
	uid  *user.User // the user the server runs as when the test runs as root
}

// StartPostgres creates a cluster with initdb in a temporary directory, starts it on a free
// port with trust authentication and waits until it answers. It is stopped and removed when
// the test ends. As root (initdb and postgres refuse to run as root) the cluster belongs to the
// postgres user. The binaries are TEST_PG_BIN's when it is set (scripts/test-postgres points it
// at the major version under test), else the newest under /usr/lib/postgresql.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := os.Getenv("TEST_PG_BIN")
	if bin == "" {
		bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(bins) == 0 {
			unavailable(t, "no initdb under /usr/lib/postgresql/*/bin")
		}
		slices.Sort(bins)
		bin = filepath.Dir(bins[len(bins)-1])
	}
	p := &Postgres{t: t, bin: bin, Port: FreePort(t)}
	dir, err := os.MkdirTemp("", "trawl-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			unavailable(t, "running as root and there is no postgres user: %v", err)
		}
		p.uid = u
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(p.destroy)
	if out, err := p.run("initdb", "-D", p.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("chaos: initdb: %v\n%s", err, out)
	}
	p.Start()
	return p
}

func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

// run runs a PostgreSQL program as the cluster's owner.
func (p *Postgres) run(prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path := filepath.Join(p.bin, prog)
	var cmd *exec.Cmd
	if p.uid != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Start starts the server and waits until it accepts connections.
func (p *Postgres) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off -c max_connections=200",
		p.Port, p.dir)
	if out, err := p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "server.log"), "-o", opts, "-w", "-t", "120", "start"); err != nil {
		p.t.Fatalf("chaos: pg_ctl start: %v\n%s\n%s", err, out, testenv.Tail(p.Log(), 20))
	}
	p.waitReady()
}

// Stop shuts the server down in fast mode: sessions are terminated (57P01) and the port closes.
func (p *Postgres) Stop() {
	p.t.Helper()
	if out, err := p.run("pg_ctl", "-D", p.data(), "-m", "fast", "-w", "-t", "120", "stop"); err != nil {
		p.t.Fatalf("chaos: pg_ctl stop: %v\n%s", err, out)
	}
}

// Restart is Stop then Start.
func (p *Postgres) Restart() {
	p.t.Helper()
	p.Stop()
	p.Start()
}

// Log returns the server log.
func (p *Postgres) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
	return string(b)
}

// URL returns the URL of database name on this cluster.
func (p *Postgres) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, name)
}

// Database creates a migrated Trawl database on the cluster and returns its URL.
func (p *Postgres) Database(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	dsn := p.URL(name)
	s, err := store.Open(ctx, dsn, 2, discard())
	if err != nil {
		return "", err
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		return "", err
	}
	return dsn, nil
}

func (p *Postgres) waitReady() {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, p.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			p.t.Fatalf("chaos: postgres on port %d not ready: %v", p.Port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// destroy stops the server immediately and removes the cluster.
func (p *Postgres) destroy() {
	if _, err := os.Stat(filepath.Join(p.data(), "postmaster.pid")); err == nil {
		if out, err := p.run("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop"); err != nil &&
			!strings.Contains(out, "not running") {
			p.t.Logf("chaos: pg_ctl stop: %v %s", err, out)
		}
	}
	os.RemoveAll(p.dir)
}

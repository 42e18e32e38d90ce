package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/service"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/web"
)

func TestAPITokenCommand(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"dashboard", "api-token"}, []string{"TRAWL_DASHBOARD_PASSWORD=pw-1"}, &out); err != nil {
		t.Fatal(err)
	}
	want := web.NewAuth("pw-1").APIToken()
	if got := strings.TrimSpace(out.String()); got != want || !strings.HasPrefix(got, "trawl_") {
		t.Errorf("api-token printed %q, want %q", got, want)
	}
	if got := web.NewAuth("pw-2").APIToken(); got == want {
		t.Error("different passwords give the same token")
	}
	err := run(t.Context(), []string{"dashboard", "api-token"}, nil, &out)
	if err == nil || !strings.Contains(err.Error(), "TRAWL_DASHBOARD_PASSWORD") {
		t.Errorf("api-token without a password: %v", err)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ env, name string }{
		{"TRAWL_DASHBOARD_REFRESH=10ms", "TRAWL_DASHBOARD_REFRESH"},
		{"TRAWL_DASHBOARD_REFRESH=often", "TRAWL_DASHBOARD_REFRESH"},
		{"TRAWL_RECRAWL_TIMEOUT=0s", "TRAWL_RECRAWL_TIMEOUT"},
		{"TRAWL_DASHBOARD_SECURE_COOKIES=maybe", "TRAWL_DASHBOARD_SECURE_COOKIES"},
		{"TRAWL_DASHBOARD_ALLOWED_HOSTS=http://dash.example/", "TRAWL_DASHBOARD_ALLOWED_HOSTS"},
		{"TRAWL_DASHBOARD_ALLOWED_HOSTS=a.example,,b.example", "TRAWL_DASHBOARD_ALLOWED_HOSTS"},
		{"TRAWL_DASHBOARD_TRUSTED_PROXIES=10.0.0.0/8,proxy.internal", "TRAWL_DASHBOARD_TRUSTED_PROXIES"},
	} {
		err := run(t.Context(), []string{"dashboard"}, []string{tc.env}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line naming %s", tc.env, err, tc.name)
		}
	}
}

// jsonKeys returns the keys of the flat JSON object in line, in order, duplicates included.
func jsonKeys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	return keys
}

// TestMigrateLogsEachKeyOnce runs `dashboard migrate` on a fresh database: every JSON log line
// has each key once (the binary's "version" and the schema's "schema_version" apart).
func TestMigrateLogsEachKeyOnce(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	environ := []string{"TRAWL_DATABASE_URL=" + testenv.Database(t), "TRAWL_LOG_FORMAT=json"}
	if err := run(t.Context(), []string{"dashboard", "migrate"}, environ, &out); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	var done map[string]any
	for line := range bytes.Lines(out.Bytes()) {
		keys := jsonKeys(t, line)
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Errorf("key %q twice in %s", k, line)
			}
			seen[k] = true
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] == "database schema is up to date" {
			done = rec
		}
	}
	if done == nil {
		t.Fatalf("no 'database schema is up to date' line in:\n%s", out.String())
	}
	if v, ok := done["schema_version"].(float64); !ok || v < 1 {
		t.Errorf("schema_version = %v, want the migration number", done["schema_version"])
	}
	if diff := cmp.Diff(service.Version, done["version"]); diff != "" {
		t.Errorf("version, the binary's (-want +got):\n%s", diff)
	}
}

// startDashboard runs the dashboard on a migrated test database and the test broker with the
// extra environment env, until the test ends. It returns its log once it is ready.
func startDashboard(t *testing.T, env ...string) *testenv.SyncBuffer {
	t.Helper()
	_, dsn := testenv.Store(t)
	topo, _ := testenv.Broker(t)
	var out testenv.SyncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	environ := append([]string{"TRAWL_DATABASE_URL=" + dsn, "TRAWL_AMQP_URL=" + testenv.AMQPURL(), "TRAWL_AMQP_PREFIX=" + topo.Prefix,
		"TRAWL_DASHBOARD_ADDR=127.0.0.1:0", "TRAWL_AMQP_MANAGEMENT_URL=http://127.0.0.1:1"}, env...)
	go func() { done <- run(ctx, []string{"dashboard"}, environ, &out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, "the dashboard is ready", func() bool {
		return strings.Contains(out.String(), "dashboard ready")
	})
	return &out
}

// TestOpenModeWarningNamesTheHosts: without a password the start-up warning says which host
// names the dashboard answers to.
func TestOpenModeWarningNamesTheHosts(t *testing.T) {
	t.Parallel()
	out := startDashboard(t, "TRAWL_DASHBOARD_ALLOWED_HOSTS=dash.internal,ops.example")
	var warning string
	for l := range strings.Lines(out.String()) {
		if strings.Contains(l, "TRAWL_DASHBOARD_PASSWORD is not set") {
			warning = l
		}
	}
	for _, want := range []string{"localhost", "127.0.0.1", "dash.internal", "ops.example", "TRAWL_DASHBOARD_ALLOWED_HOSTS"} {
		if !strings.Contains(warning, want) {
			t.Errorf("the open-mode warning does not mention %s:\n%s", want, warning)
		}
	}
}

func TestParseProxies(t *testing.T) {
	t.Parallel()
	got, err := parseProxies([]string{"10.1.0.0/16", " 192.0.2.7 ", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("fd00::/8")}
	if !slices.Equal(got, want) {
		t.Errorf("parseProxies = %v, want %v", got, want)
	}
}

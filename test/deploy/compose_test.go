package deploy

import (
	"bufio"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp"
)

const (
	composePath    = "../../docker-compose.yml"
	dockerfilePath = "../../Dockerfile"
	dockerignore   = "../../.dockerignore"
	envExamplePath = "../../.env.example"

	appImage = "trawl:dev"
)

// appServices are the services built from the Dockerfile.
var appServices = []string{"migrate", "crawler", "processor", "dashboard"}

// longRunning are all services except the one-shot migrate.
var longRunning = []string{"postgres", "rabbitmq", "crawler", "processor", "dashboard"}

// loadProject loads docker-compose.yml the way `docker compose` would, but
// with exactly env as the interpolation environment: no process environment
// and no .env file, unless opts add one.
func loadProject(t *testing.T, env []string, opts ...cli.ProjectOptionsFn) *types.Project {
	t.Helper()
	all := append([]cli.ProjectOptionsFn{
		cli.WithWorkingDirectory("../.."),
		cli.WithEnv(env),
	}, opts...)
	options, err := cli.NewProjectOptions([]string{composePath}, all...)
	if err != nil {
		t.Fatalf("NewProjectOptions: %v", err)
	}
	project, err := options.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load %s: %v", composePath, err)
	}
	return project
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("service %q not defined; have %v", name, p.ServiceNames())
	}
	return s
}

// envValue returns the value of key in the service's environment, and whether
// it is set at all (a key listed without a value and missing from the
// interpolation environment is not passed to the container).
func envValue(s types.ServiceConfig, key string) (string, bool) {
	v, ok := s.Environment[key]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

func mustEnv(t *testing.T, s types.ServiceConfig, key string) string {
	t.Helper()
	v, ok := envValue(s, key)
	if !ok {
		t.Fatalf("service %q: environment %s not set", s.Name, key)
	}
	return v
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestComposeDefaults(t *testing.T) {
	t.Parallel()
	p := loadProject(t, nil)

	t.Run("project name", func(t *testing.T) {
		t.Parallel()
		if diff := cmp.Diff("trawl", p.Name); diff != "" {
			t.Errorf("project name (-want +got):\n%s", diff)
		}
	})

	t.Run("services exist", func(t *testing.T) {
		t.Parallel()
		want := []string{"crawler", "dashboard", "migrate", "postgres", "processor", "rabbitmq"}
		if diff := cmp.Diff(want, p.ServiceNames()); diff != "" {
			t.Errorf("services (-want +got):\n%s", diff)
		}
		// Only the optional monitoring profile (monitoring_test.go) is off by default.
		var disabled []string
		for name := range p.DisabledServices {
			disabled = append(disabled, name)
		}
		sort.Strings(disabled)
		if diff := cmp.Diff(monitoringServices, disabled); diff != "" {
			t.Errorf("services disabled by profiles (-want +got):\n%s", diff)
		}
	})

	t.Run("images", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			service string
			image   string
			build   bool
		}{
			{"postgres", "postgres:17.10", false},
			{"rabbitmq", "rabbitmq:4.3-management", false},
			{"migrate", appImage, true},
			{"crawler", appImage, true},
			{"processor", appImage, true},
			{"dashboard", appImage, true},
		}
		for _, tt := range tests {
			t.Run(tt.service, func(t *testing.T) {
				t.Parallel()
				s := service(t, p, tt.service)
				if diff := cmp.Diff(tt.image, s.Image); diff != "" {
					t.Errorf("image (-want +got):\n%s", diff)
				}
				if !tt.build {
					if s.Build != nil {
						t.Errorf("unexpected build section: %+v", s.Build)
					}
					return
				}
				if s.Build == nil {
					t.Fatal("no build section")
				}
				type build struct{ Context, Dockerfile, Version string }
				want := build{Context: p.WorkingDir, Dockerfile: "Dockerfile", Version: "dev"}
				got := build{Context: s.Build.Context, Dockerfile: s.Build.Dockerfile}
				if v := s.Build.Args["VERSION"]; v != nil {
					got.Version = *v
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("build (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("healthchecks", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			service string
			test    []string
		}{
			{"postgres", []string{"CMD-SHELL", `pg_isready -h 127.0.0.1 -U "${POSTGRES_USER}" -d "${POSTGRES_DB}"`}},
			{"rabbitmq", []string{"CMD", "rabbitmq-diagnostics", "-q", "ping"}},
			{"crawler", []string{"CMD", "/usr/local/bin/crawler", "healthcheck"}},
			{"processor", []string{"CMD", "/usr/local/bin/processor", "healthcheck"}},
			{"dashboard", []string{"CMD", "/usr/local/bin/dashboard", "healthcheck"}},
		}
		for _, tt := range tests {
			t.Run(tt.service, func(t *testing.T) {
				t.Parallel()
				hc := service(t, p, tt.service).HealthCheck
				if hc == nil || hc.Disable || len(hc.Test) == 0 {
					t.Fatalf("no enabled healthcheck with a test: %+v", hc)
				}
				if diff := cmp.Diff(tt.test, []string(hc.Test)); diff != "" {
					t.Errorf("healthcheck test (-want +got):\n%s", diff)
				}
				if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil || hc.StartPeriod == nil {
					t.Errorf("healthcheck must set interval, timeout, retries and start_period: %+v", hc)
				}
			})
		}
		// Every long-running service is covered by the table above.
		var covered []string
		for _, tt := range tests {
			covered = append(covered, tt.service)
		}
		if diff := cmp.Diff(longRunning, covered); diff != "" {
			t.Errorf("healthcheck table vs long-running services (-want +got):\n%s", diff)
		}
	})

	t.Run("migrate has no healthcheck", func(t *testing.T) {
		t.Parallel()
		if hc := service(t, p, "migrate").HealthCheck; hc != nil && !hc.Disable {
			t.Errorf("one-shot migrate should not have a healthcheck: %+v", hc)
		}
	})

	t.Run("depends_on conditions", func(t *testing.T) {
		t.Parallel()
		const (
			healthy   = types.ServiceConditionHealthy
			completed = types.ServiceConditionCompletedSuccessfully
		)
		want := map[string]map[string]string{
			"postgres": {},
			"rabbitmq": {},
			"migrate":  {"postgres": healthy},
			"crawler":  {"rabbitmq": healthy, "migrate": completed},
			"processor": {
				"postgres": healthy, "rabbitmq": healthy, "migrate": completed,
			},
			"dashboard": {
				"postgres": healthy, "rabbitmq": healthy, "migrate": completed,
			},
		}
		got := map[string]map[string]string{}
		for name, s := range p.Services {
			got[name] = map[string]string{}
			for dep, cfg := range s.DependsOn {
				got[name][dep] = cfg.Condition
				if !cfg.Required {
					t.Errorf("%s depends_on %s: required is false", name, dep)
				}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("depends_on (-want +got):\n%s", diff)
		}
	})

	t.Run("named volumes", func(t *testing.T) {
		t.Parallel()
		var names []string
		for name, v := range p.Volumes {
			names = append(names, name)
			if v.External {
				t.Errorf("volume %s is external", name)
			}
		}
		sort.Strings(names)
		if diff := cmp.Diff([]string{"grafanadata", "pgdata", "prometheusdata", "rabbitmqdata"}, names); diff != "" {
			t.Errorf("top-level volumes (-want +got):\n%s", diff)
		}

		type mount struct{ Type, Source, Target string }
		want := map[string][]mount{
			"postgres": {{types.VolumeTypeVolume, "pgdata", "/var/lib/postgresql/data"}},
			"rabbitmq": {{types.VolumeTypeVolume, "rabbitmqdata", "/var/lib/rabbitmq"}},
		}
		got := map[string][]mount{}
		for name, s := range p.Services {
			for _, v := range s.Volumes {
				got[name] = append(got[name], mount{v.Type, v.Source, v.Target})
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("service volume mounts (-want +got):\n%s", diff)
		}
	})

	t.Run("only dashboard publishes ports", func(t *testing.T) {
		t.Parallel()
		type port struct {
			HostIP, Published string
			Target            uint32
			Protocol          string
		}
		want := map[string][]port{
			"dashboard": {{HostIP: "127.0.0.1", Published: "8080", Target: 8080, Protocol: "tcp"}},
		}
		got := map[string][]port{}
		for name, s := range p.Services {
			for _, sp := range s.Ports {
				got[name] = append(got[name], port{sp.HostIP, sp.Published, sp.Target, sp.Protocol})
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("published ports (-want +got):\n%s", diff)
		}
	})

	t.Run("workers are scalable", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"crawler", "processor"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := service(t, p, name)
				type scaling struct {
					ContainerName, Hostname string
					Ports                   int
				}
				if diff := cmp.Diff(scaling{}, scaling{s.ContainerName, s.Hostname, len(s.Ports)}); diff != "" {
					t.Errorf("%s cannot be scaled (-want +got):\n%s", name, diff)
				}
			})
		}
	})

	t.Run("no guest credentials", func(t *testing.T) {
		t.Parallel()
		for name, s := range p.Services {
			for k, v := range s.Environment {
				if v != nil && strings.Contains(strings.ToLower(*v), "guest") {
					t.Errorf("service %s: %s=%q mentions guest", name, k, *v)
				}
			}
		}
	})

	t.Run("amqp url uses the rabbitmq user", func(t *testing.T) {
		t.Parallel()
		rabbit := service(t, p, "rabbitmq")
		want := url.UserPassword(
			mustEnv(t, rabbit, "RABBITMQ_DEFAULT_USER"),
			mustEnv(t, rabbit, "RABBITMQ_DEFAULT_PASS"),
		).String()
		for _, name := range appServices {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				raw := mustEnv(t, service(t, p, name), "TRAWL_AMQP_URL")
				u, err := url.Parse(raw)
				if err != nil {
					t.Fatalf("TRAWL_AMQP_URL %q: %v", raw, err)
				}
				type amqp struct{ Scheme, User, Host string }
				wantURL := amqp{"amqp", want, "rabbitmq:5672"}
				gotURL := amqp{u.Scheme, u.User.String(), u.Host}
				if diff := cmp.Diff(wantURL, gotURL); diff != "" {
					t.Errorf("TRAWL_AMQP_URL (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("database url matches postgres", func(t *testing.T) {
		t.Parallel()
		pg := service(t, p, "postgres")
		type db struct{ Scheme, User, Host, Path, SSLMode string }
		want := db{
			Scheme:  "postgres",
			User:    url.UserPassword(mustEnv(t, pg, "POSTGRES_USER"), mustEnv(t, pg, "POSTGRES_PASSWORD")).String(),
			Host:    "postgres:5432",
			Path:    "/" + mustEnv(t, pg, "POSTGRES_DB"),
			SSLMode: "disable",
		}
		tests := []struct {
			service string
			wantSet bool
		}{
			{"migrate", true},
			{"processor", true},
			{"dashboard", true},
			{"crawler", false},
		}
		for _, tt := range tests {
			t.Run(tt.service, func(t *testing.T) {
				t.Parallel()
				raw, ok := envValue(service(t, p, tt.service), "TRAWL_DATABASE_URL")
				if ok != tt.wantSet {
					t.Fatalf("TRAWL_DATABASE_URL set = %v, want %v", ok, tt.wantSet)
				}
				if !ok {
					return
				}
				u, err := url.Parse(raw)
				if err != nil {
					t.Fatalf("TRAWL_DATABASE_URL %q: %v", raw, err)
				}
				got := db{u.Scheme, u.User.String(), u.Host, u.Path, u.Query().Get("sslmode")}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("TRAWL_DATABASE_URL (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("environment defaults", func(t *testing.T) {
		t.Parallel()
		const unset = "<unset>"
		tests := []struct {
			service, key, want string
		}{
			{"rabbitmq", "RABBITMQ_DEFAULT_USER", "trawl"},
			{"postgres", "POSTGRES_USER", "trawl"},
			{"postgres", "POSTGRES_DB", "trawl"},
			{"crawler", "TRAWL_CRAWLER_CONCURRENCY", "32"},
			{"crawler", "TRAWL_ALLOW_PRIVATE_NETWORKS", "false"},
			{"crawler", "TRAWL_USER_AGENT", "TrawlBot/0.1 (+https://github.com/trawlhq/trawl)"},
			{"crawler", "TRAWL_LOG_LEVEL", "info"},
			{"crawler", "TRAWL_LOG_FORMAT", "json"},
			{"crawler", "TRAWL_AMQP_PREFIX", "trawl."},
			{"crawler", "TRAWL_HEALTH_ADDR", ":8081"},
			{"processor", "TRAWL_HEALTH_ADDR", ":8082"},
			{"dashboard", "TRAWL_DASHBOARD_ADDR", ":8080"},
			{"dashboard", "TRAWL_DASHBOARD_PASSWORD", "change-me"},
			{"crawler", "TRAWL_SHUTDOWN_TIMEOUT", "30s"},
			// Pass-through tunables stay unset so the binaries' own
			// defaults apply.
			{"crawler", "TRAWL_FETCH_TIMEOUT", unset},
			{"processor", "TRAWL_DELIVERY_LIMIT", unset},
			{"processor", "TRAWL_RETRY_MAX", unset},
		}
		for _, tt := range tests {
			t.Run(tt.service+"/"+tt.key, func(t *testing.T) {
				t.Parallel()
				got, ok := envValue(service(t, p, tt.service), tt.key)
				if !ok {
					got = unset
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", tt.key, diff)
				}
			})
		}
	})

	t.Run("shared settings agree across binaries", func(t *testing.T) {
		t.Parallel()
		for _, key := range []string{"TRAWL_AMQP_URL", "TRAWL_AMQP_PREFIX", "TRAWL_LOG_LEVEL", "TRAWL_LOG_FORMAT", "TRAWL_SHUTDOWN_TIMEOUT"} {
			want := mustEnv(t, service(t, p, "dashboard"), key)
			for _, name := range appServices {
				if diff := cmp.Diff(want, mustEnv(t, service(t, p, name), key)); diff != "" {
					t.Errorf("%s: %s differs from dashboard (-want +got):\n%s", name, key, diff)
				}
			}
		}
	})

	t.Run("restart and shutdown", func(t *testing.T) {
		t.Parallel()
		type lifecycle struct {
			Restart     string
			GracePeriod time.Duration
			Command     []string
		}
		grace := 40 * time.Second
		tests := []struct {
			service string
			want    lifecycle
		}{
			{"postgres", lifecycle{"unless-stopped", 30 * time.Second, nil}},
			{"rabbitmq", lifecycle{"unless-stopped", 0, nil}},
			{"migrate", lifecycle{"no", grace, []string{"/usr/local/bin/dashboard", "migrate"}}},
			{"crawler", lifecycle{"unless-stopped", grace, []string{"/usr/local/bin/crawler"}}},
			{"processor", lifecycle{"unless-stopped", grace, []string{"/usr/local/bin/processor"}}},
			{"dashboard", lifecycle{"unless-stopped", grace, []string{"/usr/local/bin/dashboard"}}},
		}
		for _, tt := range tests {
			t.Run(tt.service, func(t *testing.T) {
				t.Parallel()
				s := service(t, p, tt.service)
				got := lifecycle{Restart: s.Restart, Command: s.Command}
				if s.StopGracePeriod != nil {
					got.GracePeriod = time.Duration(*s.StopGracePeriod)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("lifecycle (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("grace period exceeds shutdown timeout", func(t *testing.T) {
		t.Parallel()
		for _, name := range appServices {
			s := service(t, p, name)
			timeout, err := time.ParseDuration(mustEnv(t, s, "TRAWL_SHUTDOWN_TIMEOUT"))
			if err != nil {
				t.Fatalf("%s: TRAWL_SHUTDOWN_TIMEOUT: %v", name, err)
			}
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < timeout+5*time.Second {
				t.Errorf("%s: stop_grace_period %v leaves no margin over TRAWL_SHUTDOWN_TIMEOUT %v", name, s.StopGracePeriod, timeout)
			}
		}
	})

	t.Run("app containers are locked down", func(t *testing.T) {
		t.Parallel()
		type hardening struct {
			ReadOnly    bool
			CapDrop     []string
			SecurityOpt []string
			Privileged  bool
		}
		want := hardening{ReadOnly: true, CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges:true"}}
		for _, name := range appServices {
			s := service(t, p, name)
			got := hardening{s.ReadOnly, s.CapDrop, s.SecurityOpt, s.Privileged}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s hardening (-want +got):\n%s", name, diff)
			}
		}
	})
}

// interpolationRE matches, leftmost first, an escaped dollar ($$), a braced
// interpolation (${...}) or an unbraced one ($NAME).
var interpolationRE = regexp.MustCompile(`\$(\$|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)`)

// withDefaultRE is a braced interpolation with a default value.
var withDefaultRE = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*:?-`)

// variableNameRE extracts the variable name from an interpolation.
var variableNameRE = regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// interpolations returns every interpolation (not $$ escapes) in the text.
func interpolations(text string) []string {
	var out []string
	for _, m := range interpolationRE.FindAllString(text, -1) {
		if m != "$$" {
			out = append(out, m)
		}
	}
	return out
}

func TestComposeInterpolationsHaveDefaults(t *testing.T) {
	t.Parallel()
	raw := readFile(t, composePath)
	found := interpolations(raw)
	if len(found) == 0 {
		t.Fatal("no ${...} interpolations found; regexp broken?")
	}
	var missing []string
	for _, m := range found {
		if !withDefaultRE.MatchString(m) {
			missing = append(missing, m)
		}
	}
	if diff := cmp.Diff([]string(nil), missing); diff != "" {
		t.Errorf("interpolations without a default (-want +got):\n%s", diff)
	}
}

func TestInterpolationScanner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{`a: ${X:-1}`, []string{"${X:-1}"}},
		{`a: ${X-1} ${Y}`, []string{"${X-1}", "${Y}"}},
		{`a: $$HOME $${HOME} $$$X`, []string{"$X"}},
		{`a: "$X and ${Y:?required}"`, []string{"$X", "${Y:?required}"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, interpolations(tt.in)); diff != "" {
				t.Errorf("interpolations(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestComposeEnvOverride(t *testing.T) {
	t.Parallel()
	p := loadProject(t, []string{
		"TRAWL_DASHBOARD_PORT=9999",
		"TRAWL_DASHBOARD_BIND=0.0.0.0",
		"TRAWL_RABBITMQ_USER=alice",
		"TRAWL_RABBITMQ_PASSWORD=s3cret",
		"TRAWL_POSTGRES_DB=crawl",
		"TRAWL_CRAWLER_CONCURRENCY=8",
		"TRAWL_FETCH_TIMEOUT=10s",
		"TRAWL_VERSION=v1.2.3",
	})

	t.Run("dashboard port", func(t *testing.T) {
		t.Parallel()
		ports := service(t, p, "dashboard").Ports
		var got []string
		for _, sp := range ports {
			got = append(got, sp.HostIP+":"+sp.Published)
		}
		if diff := cmp.Diff([]string{"0.0.0.0:9999"}, got); diff != "" {
			t.Errorf("dashboard ports (-want +got):\n%s", diff)
		}
	})

	t.Run("environment", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			service, key, want string
		}{
			{"rabbitmq", "RABBITMQ_DEFAULT_USER", "alice"},
			{"rabbitmq", "RABBITMQ_DEFAULT_PASS", "s3cret"},
			{"crawler", "TRAWL_AMQP_URL", "amqp://alice:s3cret@rabbitmq:5672/"},
			{"processor", "TRAWL_AMQP_URL", "amqp://alice:s3cret@rabbitmq:5672/"},
			{"postgres", "POSTGRES_DB", "crawl"},
			{"processor", "TRAWL_DATABASE_URL", "postgres://trawl:trawl-change-me@postgres:5432/crawl?sslmode=disable"},
			{"crawler", "TRAWL_CRAWLER_CONCURRENCY", "8"},
			{"crawler", "TRAWL_FETCH_TIMEOUT", "10s"},
		}
		for _, tt := range tests {
			t.Run(tt.service+"/"+tt.key, func(t *testing.T) {
				t.Parallel()
				if diff := cmp.Diff(tt.want, mustEnv(t, service(t, p, tt.service), tt.key)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", tt.key, diff)
				}
			})
		}
	})

	t.Run("image version", func(t *testing.T) {
		t.Parallel()
		for _, name := range appServices {
			s := service(t, p, name)
			got := []string{s.Image, ""}
			if s.Build != nil && s.Build.Args["VERSION"] != nil {
				got[1] = *s.Build.Args["VERSION"]
			}
			if diff := cmp.Diff([]string{"trawl:v1.2.3", "v1.2.3"}, got); diff != "" {
				t.Errorf("%s image, VERSION build arg (-want +got):\n%s", name, diff)
			}
		}
	})
}

// envExampleNames returns the variable names .env.example sets or documents
// (commented-out NAME=value lines).
func envExampleNames(t *testing.T) []string {
	t.Helper()
	lineRE := regexp.MustCompile(`^#?\s*([A-Z][A-Z0-9_]*)=`)
	var names []string
	sc := bufio.NewScanner(strings.NewReader(readFile(t, envExamplePath)))
	for sc.Scan() {
		if m := lineRE.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			names = append(names, m[1])
		}
	}
	sort.Strings(names)
	return names
}

func TestEnvExample(t *testing.T) {
	t.Parallel()

	t.Run("lists every variable compose reads", func(t *testing.T) {
		t.Parallel()
		// Interpolated variables...
		seen := map[string]bool{}
		for _, m := range interpolations(readFile(t, composePath)) {
			if sm := variableNameRE.FindStringSubmatch(m); sm != nil {
				seen[sm[1]] = true
			}
		}
		// ...and pass-through ones (listed without a value, so unset here).
		p := loadProject(t, nil)
		for _, s := range p.Services {
			for k, v := range s.Environment {
				if v == nil {
					seen[k] = true
				}
			}
		}
		var want []string
		for name := range seen {
			want = append(want, name)
		}
		sort.Strings(want)
		if diff := cmp.Diff(want, envExampleNames(t)); diff != "" {
			t.Errorf(".env.example variables (-compose +.env.example):\n%s", diff)
		}
	})

	t.Run("values match compose defaults", func(t *testing.T) {
		t.Parallel()
		// With the monitoring profile, so Grafana's password is compared too.
		monitoring := cli.WithProfiles([]string{"monitoring"})
		defaults := loadProject(t, nil, monitoring)
		fromFile := loadProject(t, nil, cli.WithEnvFiles(envExamplePath), cli.WithDotEnv, monitoring)
		if len(defaults.Services) < 8 {
			t.Fatalf("only %d services with the monitoring profile", len(defaults.Services))
		}
		for _, name := range defaults.ServiceNames() {
			want := service(t, defaults, name).Environment
			got := service(t, fromFile, name).Environment
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s environment, defaults vs .env.example (-want +got):\n%s", name, diff)
			}
		}
	})

	t.Run("warns to change passwords", func(t *testing.T) {
		t.Parallel()
		if !strings.Contains(readFile(t, envExamplePath), "CHANGE THE PASSWORDS BELOW (POSTGRES, RABBITMQ, DASHBOARD, GRAFANA)") {
			t.Error(".env.example lost its warning to change the passwords")
		}
	})
}

// dockerInstruction is one Dockerfile instruction with continuation lines
// joined.
type dockerInstruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
}

// dockerStages splits the Dockerfile into stages (instructions from one FROM
// up to the next).
func dockerStages(t *testing.T) [][]dockerInstruction {
	t.Helper()
	var (
		stages  [][]dockerInstruction
		logical strings.Builder
	)
	flush := func() {
		line := strings.TrimSpace(logical.String())
		logical.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := dockerInstruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")}
		if in.Cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before the first FROM", in.Cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, dockerfilePath)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue // comments, including the syntax directive
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			logical.WriteString(cont + " ")
			continue
		}
		logical.WriteString(line)
		flush()
	}
	flush()
	return stages
}

func findInstructions(stage []dockerInstruction, cmd string) []string {
	var out []string
	for _, in := range stage {
		if in.Cmd == cmd {
			out = append(out, in.Args)
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	stages := dockerStages(t)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage Dockerfile, got %d stage(s)", len(stages))
	}
	builder, final := stages[0], stages[len(stages)-1]

	var buildCmd string
	for _, run := range findInstructions(builder, "RUN") {
		if strings.Contains(run, "go build") {
			buildCmd = run
		}
	}

	tests := []struct {
		name  string
		stage []dockerInstruction
		cmd   string
		want  []string // each must be contained in one instruction of cmd
	}{
		{"builder base", builder, "FROM", []string{"golang:1.26.8-bookworm AS build"}},
		{"cgo disabled", builder, "ENV", []string{"CGO_ENABLED=0"}},
		{"module download cached", builder, "RUN", []string{
			"--mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build go mod download",
		}},
		{"version arg", builder, "ARG", []string{"VERSION=dev"}},
		{"runtime base", final, "FROM", []string{"gcr.io/distroless/static-debian12:nonroot"}},
		{"runtime user", final, "USER", []string{"nonroot:nonroot"}},
		{"runtime port", final, "EXPOSE", []string{"8080"}},
		{"runtime entrypoint", final, "ENTRYPOINT", []string{"[]"}},
		{"runtime cmd", final, "CMD", []string{`["/usr/local/bin/dashboard"]`}},
		{"binaries installed", final, "COPY", []string{"--from=build", "/usr/local/bin/"}},
		{"oci labels", final, "LABEL", []string{
			"org.opencontainers.image.source=", "org.opencontainers.image.version=",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := findInstructions(tt.stage, tt.cmd)
			for _, want := range tt.want {
				if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, want) }) {
					t.Errorf("no %s containing %q; have %q", tt.cmd, want, got)
				}
			}
		})
	}

	t.Run("go build", func(t *testing.T) {
		t.Parallel()
		if buildCmd == "" {
			t.Fatal("no RUN ... go build in the builder stage")
		}
		wants := []string{
			"--mount=type=cache,target=/go/pkg/mod",
			"--mount=type=cache,target=/root/.cache/go-build",
			"-trimpath",
			`-ldflags "-s -w -X github.com/trawlhq/trawl/service.Version=${VERSION}"`,
		}
		var missing []string
		for _, want := range wants {
			if !strings.Contains(buildCmd, want) {
				missing = append(missing, want)
			}
		}
		// Packages must be whole arguments, not prefixes of others.
		args := strings.Fields(buildCmd)
		for _, pkg := range []string{"./cmd/crawler", "./cmd/processor", "./cmd/dashboard"} {
			if !slices.Contains(args, pkg) {
				missing = append(missing, pkg)
			}
		}
		if diff := cmp.Diff([]string(nil), missing); diff != "" {
			t.Errorf("go build %q lacks (-want +got):\n%s", buildCmd, diff)
		}
	})

	t.Run("cmd packages exist", func(t *testing.T) {
		t.Parallel()
		for _, cmd := range []string{"crawler", "processor", "dashboard"} {
			if fi, err := os.Stat(filepath.Join("..", "..", "cmd", cmd)); err != nil || !fi.IsDir() {
				t.Errorf("../../cmd/%s: not a directory (%v)", cmd, err)
			}
		}
	})

	t.Run("runtime stage runs no shell", func(t *testing.T) {
		t.Parallel()
		if runs := findInstructions(final, "RUN"); len(runs) != 0 {
			t.Errorf("distroless has no shell, yet the final stage has RUN %q", runs)
		}
	})
}

func TestDockerignore(t *testing.T) {
	t.Parallel()
	lines := map[string]bool{}
	for _, l := range strings.Split(readFile(t, dockerignore), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	tests := []struct {
		pattern string
		why     string
	}{
		{".git", "history does not belong in the image or the cache key"},
		{".env", "local secrets"},
		{".env.*", "local secrets"},
		{"**/*.test", "test binaries"},
		{"bin/", "binaries built by make build"},
		{"crawler", "a binary built by go build in the root"},
		{"processor", "a binary built by go build in the root"},
		{"dashboard", "a binary built by go build in the root"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			t.Parallel()
			if !lines[tt.pattern] {
				t.Errorf(".dockerignore lacks %q (%s)", tt.pattern, tt.why)
			}
		})
	}
	for _, needed := range []string{"go.mod", "go.sum", "migrations", "cmd", "web", "*.go", "**/*.go"} {
		if lines[needed] || lines[needed+"/"] {
			t.Errorf(".dockerignore excludes %q, which the build needs", needed)
		}
	}
}

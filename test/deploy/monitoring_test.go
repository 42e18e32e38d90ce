package deploy

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v4"

	"github.com/trawlhq/trawl/metrics"
)

// monitoringServices are the services of the optional `monitoring` profile.
var monitoringServices = []string{"grafana", "prometheus"}

// scraped are the services Prometheus scrapes, each on TRAWL_METRICS_ADDR.
var scraped = []string{"crawler", "dashboard", "processor"}

const (
	prometheusConfig = "../../deploy/prometheus/prometheus.yml"
	grafanaDashboard = "../../deploy/grafana/dashboards/trawl.json"
)

// pinnedRE accepts an image with an explicit version tag (not latest, not a bare major).
var pinnedRE = regexp.MustCompile(`^[a-z0-9./-]+:v?\d+\.\d+\.\d+$`)

func TestComposeMonitoringProfile(t *testing.T) {
	t.Parallel()
	p := loadProject(t, nil, cli.WithProfiles([]string{"monitoring"}))

	t.Run("services", func(t *testing.T) {
		t.Parallel()
		want := []string{"crawler", "dashboard", "grafana", "migrate", "postgres", "processor", "prometheus", "rabbitmq"}
		if diff := cmp.Diff(want, p.ServiceNames()); diff != "" {
			t.Errorf("services with --profile monitoring (-want +got):\n%s", diff)
		}
		for _, name := range monitoringServices {
			if diff := cmp.Diff([]string{"monitoring"}, service(t, p, name).Profiles); diff != "" {
				t.Errorf("%s profiles (-want +got):\n%s", name, diff)
			}
		}
	})

	t.Run("images pinned", func(t *testing.T) {
		t.Parallel()
		for name, prefix := range map[string]string{"prometheus": "prom/prometheus:", "grafana": "grafana/grafana:"} {
			img := service(t, p, name).Image
			if !strings.HasPrefix(img, prefix) || !pinnedRE.MatchString(img) {
				t.Errorf("%s image %q: want %sX.Y.Z", name, img, prefix)
			}
		}
	})

	t.Run("healthchecks", func(t *testing.T) {
		t.Parallel()
		for _, name := range monitoringServices {
			hc := service(t, p, name).HealthCheck
			if hc == nil || len(hc.Test) < 2 || hc.Disable {
				t.Errorf("%s: no healthcheck", name)
			}
		}
		dep, ok := service(t, p, "grafana").DependsOn["prometheus"]
		if !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("grafana depends_on prometheus = %+v, want service_healthy", dep)
		}
	})

	t.Run("ports", func(t *testing.T) {
		t.Parallel()
		if ports := service(t, p, "prometheus").Ports; len(ports) != 0 {
			t.Errorf("prometheus publishes %v; it should stay on the compose network", ports)
		}
		ports := service(t, p, "grafana").Ports
		if len(ports) != 1 || ports[0].HostIP != "127.0.0.1" || ports[0].Target != 3000 {
			t.Errorf("grafana ports = %+v, want one on 127.0.0.1 -> 3000", ports)
		}
	})

	t.Run("bind mounts exist", func(t *testing.T) {
		t.Parallel()
		want := map[string][]string{
			"prometheus": {"/etc/prometheus/prometheus.yml"},
			"grafana":    {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards"},
		}
		for name, targets := range want {
			var got []string
			for _, v := range service(t, p, name).Volumes {
				if v.Type != types.VolumeTypeBind {
					continue
				}
				got = append(got, v.Target)
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s is writable", name, v.Target)
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount source: %v", name, err)
				}
			}
			sort.Strings(got)
			if diff := cmp.Diff(targets, got); diff != "" {
				t.Errorf("%s bind mounts (-want +got):\n%s", name, diff)
			}
		}
	})

	t.Run("no default grafana credentials", func(t *testing.T) {
		t.Parallel()
		g := service(t, p, "grafana")
		if v, _ := envValue(g, "GF_SECURITY_ADMIN_PASSWORD"); v == "" || v == "admin" {
			t.Errorf("GF_SECURITY_ADMIN_PASSWORD = %q: must be set, and not to admin", v)
		}
		if v, _ := envValue(g, "GF_USERS_ALLOW_SIGN_UP"); v != "false" {
			t.Errorf("GF_USERS_ALLOW_SIGN_UP = %q, want false", v)
		}
	})

	t.Run("prometheus scrapes every replica", func(t *testing.T) {
		t.Parallel()
		jobs := scrapeJobs(t)
		for _, name := range scraped {
			addr, ok := envValue(service(t, p, name), "TRAWL_METRICS_ADDR")
			if !ok {
				t.Errorf("%s: TRAWL_METRICS_ADDR not set", name)
				continue
			}
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Errorf("%s: TRAWL_METRICS_ADDR %q: %v", name, addr, err)
				continue
			}
			want := dnsSD{Names: []string{name}, Type: "A", Port: mustAtoi(t, port)}
			if diff := cmp.Diff([]dnsSD{want}, jobs[name]); diff != "" {
				t.Errorf("job %s dns_sd_configs (-want +got):\n%s", name, diff)
			}
		}
	})
}

func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		}
	}
	readYAML(t, "../../deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Fatalf("datasources = %+v, want one prometheus at http://prometheus:9090", ds.Datasources)
	}
	var prov struct {
		Providers []struct {
			Options struct{ Path string }
		}
	}
	readYAML(t, "../../deploy/grafana/provisioning/dashboards/trawl.yml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Fatalf("dashboard providers = %+v", prov.Providers)
	}
	d := readDashboard(t)
	for _, pn := range d.Panels {
		for _, tg := range pn.Targets {
			if tg.Datasource.UID != ds.Datasources[0].UID {
				t.Errorf("panel %q queries datasource %q, want the provisioned %q", pn.Title, tg.Datasource.UID, ds.Datasources[0].UID)
			}
		}
	}
}

// Every metric a dashboard panel queries is one the binaries export.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	t.Parallel()
	exported := metrics.Exported()
	d := readDashboard(t)
	queried := map[string]bool{}
	for _, pn := range d.Panels {
		if len(pn.Targets) == 0 {
			t.Errorf("panel %q has no query", pn.Title)
		}
		for _, tg := range pn.Targets {
			names := promqlMetricNames(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: no metric found in %q", pn.Title, tg.Expr)
			}
			for _, n := range names {
				queried[n] = true
				if !slices.Contains(exported, n) {
					t.Errorf("panel %q queries %s, which no binary exports", pn.Title, n)
				}
			}
		}
	}
	// The dashboard covers every Trawl metric.
	for _, def := range metrics.Defs() {
		covered := queried[def.Name] || queried[def.Name+"_bucket"] || queried[def.Name+"_sum"]
		if !covered {
			t.Errorf("no dashboard panel shows %s", def.Name)
		}
	}
}

func TestPromQLMetricNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (job) (rate(trawl_a_total{job="x", code=~"5.."}[$__rate_interval]))`, []string{"trawl_a_total"}},
		{`histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))`, []string{"h_bucket"}},
		{`sum(rate(a_sum[1m])) / sum(rate(a_count[1m])) > 1e3`, []string{"a_count", "a_sum"}},
		{`count without (instance, pod) (b) or on(job) group_left(x) c offset 5m`, []string{"b", "c"}},
		{`{__name__="trawl_x", job="y"}`, []string{"trawl_x"}},
		{`sum(d) by (job) and bool e unless f`, []string{"d", "e", "f"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, promqlMetricNames(tt.expr)); diff != "" {
				t.Errorf("promqlMetricNames(%q) (-want +got):\n%s", tt.expr, diff)
			}
		})
	}
}

var (
	// grouping removes label lists: by (...), without (...), on (...), ignoring (...),
	// group_left (...), group_right (...).
	groupingRE = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	nameRE     = regexp.MustCompile(`__name__\s*=\s*"([^"]+)"`)
	grafanaRE  = regexp.MustCompile(`\$\{?\w+\}?`)
	tokenRE    = regexp.MustCompile(`[0-9][0-9.eE+]*[a-zA-Z]*|[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords   = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
		"group_left", "group_right", "inf", "nan", "Inf", "NaN"}
)

// promqlMetricNames returns the metric names an expression selects, sorted and deduplicated: the
// identifiers that are not functions, aggregations, keywords, labels, strings or durations.
func promqlMetricNames(expr string) []string {
	seen := map[string]bool{}
	for _, m := range nameRE.FindAllStringSubmatch(expr, -1) {
		seen[m[1]] = true
	}
	s := grafanaRE.ReplaceAllString(expr, "1m")
	s = stripDelimited(s, '"', '"')
	s = stripDelimited(s, '{', '}')
	s = stripDelimited(s, '[', ']')
	s = groupingRE.ReplaceAllString(s, " ")
	for _, tok := range tokenRE.FindAllString(s, -1) {
		if tok[0] >= '0' && tok[0] <= '9' || strings.HasSuffix(tok, "(") || slices.Contains(keywords, tok) {
			continue // a number or duration, a function or aggregation call, a keyword
		}
		seen[tok] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// stripDelimited removes every open...close span (label matchers, ranges, strings).
func stripDelimited(s string, open, close byte) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case depth > 0 && c == close:
			depth = 0
			b.WriteByte(' ')
		case depth > 0:
		case c == open:
			depth = 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

type dnsSD struct {
	Names []string `yaml:"names"`
	Type  string   `yaml:"type"`
	Port  int      `yaml:"port"`
}

// scrapeJobs returns the dns_sd_configs of each job in the Prometheus configuration.
func scrapeJobs(t *testing.T) map[string][]dnsSD {
	t.Helper()
	var cfg struct {
		ScrapeConfigs []struct {
			JobName string  `yaml:"job_name"`
			DNSSD   []dnsSD `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, prometheusConfig, &cfg)
	out := map[string][]dnsSD{}
	for _, sc := range cfg.ScrapeConfigs {
		if _, dup := out[sc.JobName]; dup {
			t.Errorf("job %s defined twice", sc.JobName)
		}
		out[sc.JobName] = sc.DNSSD
	}
	return out
}

type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr       string `json:"expr"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal([]byte(readFile(t, grafanaDashboard)), &d); err != nil {
		t.Fatalf("%s: %v", grafanaDashboard, err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no uid or no panels", grafanaDashboard)
	}
	return d
}

func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Clean(path))), out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}

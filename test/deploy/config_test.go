package deploy

import (
	"bufio"
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

	trawlservice "github.com/trawlhq/trawl/service"
)

// binaries are the Trawl binaries, each run by the compose service of the same name.
var binaries = []string{"crawler", "processor", "dashboard"}

// goRuntimeVars are the Go runtime's settings the README's configuration table documents, with
// the defaults the crawler and the processor apply (trawlservice.TuneGC, trawlservice.TuneProcs).
var goRuntimeVars = map[string]string{
	"GOGC":       strconv.Itoa(trawlservice.DefaultGCPercent),
	"GOMEMLIMIT": "", // derived from the worker's settings and the container's memory limit
	"GOMAXPROCS": strconv.Itoa(trawlservice.DefaultProcs),
}

// composeFixed are the settings docker-compose.yml sets itself rather than passing through from
// .env: addresses inside the containers, the URLs it builds from the Postgres and RabbitMQ
// credentials, and the shutdown timeout that stop_grace_period is sized to.
var composeFixed = map[string]string{
	"TRAWL_AMQP_URL":         "built from TRAWL_RABBITMQ_USER and TRAWL_RABBITMQ_PASSWORD",
	"TRAWL_DATABASE_URL":     "built from TRAWL_POSTGRES_USER, _PASSWORD and _DB",
	"TRAWL_METRICS_ADDR":     "the port Prometheus scrapes on the compose network",
	"TRAWL_HEALTH_ADDR":      "the port the healthcheck subcommand asks",
	"TRAWL_DASHBOARD_ADDR":   "the container port that is published",
	"TRAWL_SHUTDOWN_TIMEOUT": "stop_grace_period is sized to it",
}

// composeOwnDefault are the settings whose compose default differs from the code's on purpose.
var composeOwnDefault = map[string]string{
	"TRAWL_DASHBOARD_PASSWORD": "unset in the code (an open dashboard, with a warning); compose insists on one",
}

// setting is one environment variable a binary reads.
type setting struct {
	Name     string
	Defaults map[string]string // the code's default per binary ("" when it has none)
	UsedBy   []string          // binaries, per the README's configuration table
}

// Default is the code's default, when every binary has the same one.
func (s setting) Default() (string, bool) {
	var vals []string
	for _, v := range s.Defaults {
		vals = append(vals, v)
	}
	slices.Sort(vals)
	vals = slices.Compact(vals)
	if len(vals) != 1 {
		return "", false
	}
	return vals[0], true
}

// codeSettings reads every `env:"TRAWL_…"` tag in the non-test Go files under cmd/ and service/,
// with its envDefault, and which binaries parse it: a binary's own cmd/NAME package, or every
// binary for service's shared configuration.
func codeSettings(t *testing.T) map[string]setting {
	t.Helper()
	tagRE := regexp.MustCompile(`env:"(TRAWL_[A-Z0-9_]+)"(?:\s+envDefault:"([^"]*)")?`)
	out := map[string]setting{}
	add := func(dir string, bins []string) {
		files, err := filepath.Glob(filepath.Join("..", "..", dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			for _, m := range tagRE.FindAllStringSubmatch(readFile(t, f), -1) {
				s := out[m[1]]
				if s.Name == "" {
					s = setting{Name: m[1], Defaults: map[string]string{}}
				}
				for _, b := range bins {
					if !slices.Contains(s.UsedBy, b) {
						s.UsedBy = append(s.UsedBy, b)
					}
					s.Defaults[b] = m[2]
				}
				out[m[1]] = s
			}
		}
	}
	add("service", binaries)
	for _, b := range binaries {
		add(filepath.Join("cmd", b), []string{b})
	}
	if len(out) < 30 {
		t.Fatalf("found only %d TRAWL_ settings in cmd/ and service/: the scan is broken", len(out))
	}
	return out
}

// readmeRow is one row of the README's configuration table.
type readmeRow struct {
	Names   []string
	UsedBy  []string
	Default string // the Default cell as written
}

// readmeConfigTable parses the README's configuration table.
func readmeConfigTable(t *testing.T) map[string]readmeRow {
	t.Helper()
	nameRE := regexp.MustCompile("`((?:TRAWL_|GO)[A-Z0-9_]+)`")
	rows := map[string]readmeRow{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, "../../README.md")))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) < 4 {
			continue
		}
		var row readmeRow
		for _, m := range nameRE.FindAllStringSubmatch(cells[0], -1) {
			row.Names = append(row.Names, m[1])
		}
		if len(row.Names) == 0 {
			continue
		}
		for b := range strings.SplitSeq(strings.TrimSpace(cells[1]), ",") {
			b = strings.TrimSpace(b)
			if b == "all" {
				row.UsedBy = append(row.UsedBy, binaries...)
				continue
			}
			if !slices.Contains(binaries, b) {
				t.Errorf("README configuration table: %v used by %q, which is no binary", row.Names, b)
			}
			row.UsedBy = append(row.UsedBy, b)
		}
		row.Default = strings.TrimSpace(cells[2])
		for _, n := range row.Names {
			rows[n] = row
		}
	}
	if len(rows) < 30 {
		t.Fatalf("README configuration table: only %d rows parsed", len(rows))
	}
	return rows
}

// configSettings joins the code's settings with the README's table: each setting with its code
// default and the binaries that use it, per the table (which must name only binaries that parse
// it), plus the Go runtime's settings.
func configSettings(t *testing.T) []setting {
	t.Helper()
	code := codeSettings(t)
	table := readmeConfigTable(t)
	var out []setting
	for name, s := range code {
		row, ok := table[name]
		if !ok {
			continue // TestREADMEConfigTableListsEveryVariable reports it
		}
		for _, b := range row.UsedBy {
			if !slices.Contains(s.UsedBy, b) {
				t.Errorf("README says %s is used by the %s, which does not read it", name, b)
			}
		}
		// A Default cell that is one literal value (not another setting's name) must be the
		// code's.
		v, ok := strings.CutPrefix(row.Default, "`")
		v, ok2 := strings.CutSuffix(v, "`")
		if def, same := s.Default(); same && ok && ok2 && !strings.Contains(v, "`") && !strings.HasPrefix(v, "TRAWL_") {
			if diff := cmp.Diff(def, v); diff != "" {
				t.Errorf("README default of %s (-code +README):\n%s", name, diff)
			}
		}
		s.UsedBy = row.UsedBy
		out = append(out, s)
	}
	for name, def := range goRuntimeVars {
		row, ok := table[name]
		if !ok {
			t.Errorf("README configuration table has no row for %s", name)
			continue
		}
		defs := map[string]string{}
		for _, b := range row.UsedBy {
			defs[b] = def
		}
		out = append(out, setting{Name: name, Defaults: defs, UsedBy: row.UsedBy})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// envExampleValues returns the value .env.example gives each variable it sets or documents in a
// commented-out NAME=value line, unquoted.
func envExampleValues(t *testing.T) map[string]string {
	t.Helper()
	lineRE := regexp.MustCompile(`^#?\s*([A-Z][A-Z0-9_]*)=(.*)$`)
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, envExamplePath)))
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		v := m[2]
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		if old, dup := out[m[1]]; dup && old != v {
			t.Errorf(".env.example gives %s twice: %q and %q", m[1], old, v)
		}
		out[m[1]] = v
	}
	return out
}

// TestComposePassesEverySetting checks docker-compose.yml and .env.example against the code and
// the README's configuration table: every setting reaches each service whose binary uses it,
// either fixed by compose or taken from .env, and .env.example shows the code's default for each
// setting it lets the operator change.
func TestComposePassesEverySetting(t *testing.T) {
	t.Parallel()
	settings := configSettings(t)
	p := loadProject(t, nil)
	example := envExampleValues(t)
	for _, s := range settings {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			for _, b := range s.UsedBy {
				v, listed := service(t, p, b).Environment[s.Name]
				if !listed {
					t.Errorf("the %s service is not given %s: list it (pass-through or with a default)", b, s.Name)
					continue
				}
				if _, fixed := composeFixed[s.Name]; fixed {
					if v == nil {
						t.Errorf("the %s service: %s is fixed by compose but has no value", b, s.Name)
					}
					continue
				}
				if _, own := composeOwnDefault[s.Name]; v != nil && !own {
					if diff := cmp.Diff(s.Defaults[b], *v); diff != "" {
						t.Errorf("the %s service's default for %s (-code +compose):\n%s", b, s.Name, diff)
					}
				}
			}
			if why, fixed := composeFixed[s.Name]; fixed {
				if _, ok := example[s.Name]; ok {
					t.Errorf(".env.example sets %s, which compose fixes (%s)", s.Name, why)
				}
				return
			}
			def, same := s.Default()
			if !same {
				t.Fatalf("%s has different defaults per binary (%v): compose must fix it", s.Name, s.Defaults)
			}
			got, ok := example[s.Name]
			if !ok {
				t.Errorf(".env.example does not list %s (default %q)", s.Name, def)
				return
			}
			if _, own := composeOwnDefault[s.Name]; own {
				return // TestEnvExample compares it with compose's default
			}
			if diff := cmp.Diff(def, got); diff != "" {
				t.Errorf(".env.example value of %s (-code +.env.example):\n%s", s.Name, diff)
			}
		})
	}
}

// TestComposeResourceLimits checks that every service has CPU and memory limits, and that the
// Go workers' limits leave room for what they are tuned for: at least GOMAXPROCS cores, and a
// memory limit whose 80% (the soft limit service.TuneGC derives from it) is above the heap a
// worker needs at its defaults, so the derived GOMEMLIMIT never starves it.
func TestComposeResourceLimits(t *testing.T) {
	t.Parallel()
	p := loadProject(t, nil, cli.WithProfiles([]string{"monitoring"}))
	// Each worker's soft memory limit at the defaults (README, GOGC and GOMEMLIMIT).
	heap := map[string]int64{"crawler": 576 << 20, "processor": 124 << 20}
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) < 8 {
		t.Fatalf("only %d services with the monitoring profile: %v", len(names), names)
	}
	for _, name := range names {
		s := p.Services[name]
		var lim *types.Resource
		if s.Deploy != nil {
			lim = s.Deploy.Resources.Limits
		}
		if lim == nil || lim.NanoCPUs <= 0 || lim.MemoryBytes <= 0 {
			t.Errorf("%s: no deploy.resources.limits with cpus and memory: %+v", name, lim)
			continue
		}
		if need, ok := heap[name]; ok {
			if float64(lim.NanoCPUs) < float64(trawlservice.DefaultProcs) {
				t.Errorf("%s: cpus %v below GOMAXPROCS %d", name, lim.NanoCPUs, trawlservice.DefaultProcs)
			}
			if got := int64(lim.MemoryBytes) / 10 * 8; got < need {
				t.Errorf("%s: 80%% of the memory limit is %d MiB, below the %d MiB the worker needs at its defaults", name, got>>20, need>>20)
			}
		}
	}
}

// TestNoMissingDocReferences checks that the deployment files refer only to documents that exist.
func TestNoMissingDocReferences(t *testing.T) {
	t.Parallel()
	refRE := regexp.MustCompile(`\b(docs/[A-Za-z0-9_./-]+\.md)\b`)
	for _, f := range []string{composePath, envExamplePath, dockerfilePath, "../../Makefile"} {
		for _, m := range refRE.FindAllStringSubmatch(readFile(t, f), -1) {
			if _, err := os.Stat(filepath.Join("..", "..", m[1])); err != nil {
				t.Errorf("%s refers to %s, which does not exist", f, m[1])
			}
		}
	}
}

// pinnedTagRE is an image tag that names at least a minor version: 17.10, 4.3-management,
// v3.5.0, 1.26.8-bookworm.
var pinnedTagRE = regexp.MustCompile(`^v?\d+\.\d+(\.\d+)?([-.][a-z0-9.-]+)?$`)

// distrolessRE is a distroless image, which has no version tags: it is pinned by the Debian
// release in its name (docs/adr/0002-pinned-images.md).
var distrolessRE = regexp.MustCompile(`^gcr\.io/distroless/[a-z]+-debian\d+:[a-z]+$`)

// imagePinned says whether image (with an optional @sha256 digest) is pinned to a minor version.
func imagePinned(image string) bool {
	image, _, _ = strings.Cut(image, "@")
	if distrolessRE.MatchString(image) {
		return true
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return false // no tag: latest
	}
	return pinnedTagRE.MatchString(image[i+1:])
}

// TestImagesPinned checks that every image compose pulls and every base image of the Dockerfile
// is pinned to a minor version, so `docker compose pull` never moves to a new minor release
// (or, for RabbitMQ, one that cannot be downgraded) unasked.
func TestImagesPinned(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		image string
		want  bool
	}{
		{"postgres:17.10", true}, {"rabbitmq:4.3-management", true}, {"prom/prometheus:v3.5.0", true},
		{"golang:1.26.8-bookworm", true}, {"gcr.io/distroless/static-debian12:nonroot", true},
		{"postgres:17", false}, {"rabbitmq:4-management", false}, {"postgres", false},
		{"golang:1.26-bookworm", true}, {"localhost:5000/x", false}, {"grafana/grafana:latest", false},
	} {
		if got := imagePinned(tt.image); got != tt.want {
			t.Errorf("imagePinned(%q) = %v, want %v", tt.image, got, tt.want)
		}
	}
	var images []string
	p := loadProject(t, nil, cli.WithProfiles([]string{"monitoring"}))
	for _, s := range p.Services {
		if s.Build == nil {
			images = append(images, s.Image)
		}
	}
	for _, stage := range dockerStages(t) {
		from := strings.Fields(findInstructions(stage, "FROM")[0])
		images = append(images, from[len(from)-1])
		if len(from) >= 3 && strings.EqualFold(from[len(from)-2], "AS") {
			images[len(images)-1] = from[len(from)-3]
		}
	}
	sort.Strings(images)
	if len(images) < 6 {
		t.Fatalf("found only %d images: %v", len(images), images)
	}
	for _, img := range images {
		if !imagePinned(img) {
			t.Errorf("image %s is not pinned to a minor version", img)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// events is what go tool test2json makes of a chaos run's -v output: two scenarios logged their
// figures (one as a subtest, one with a figure the report does not know), one failed, and other
// output is ignored.
const events = `{"Action":"run","Test":"TestKillProcessor"}
{"Action":"output","Test":"TestKillProcessor","Output":"    run_test.go:210: CHAOS scenario=kill-processor pages_expected=2000 pages_stored=2000 duplicates=0 refetches=37 max_refetches=50 lease_expiries=14 max_lease_expiries=any faults=5 recover_ms=1234 max_recover_ms=20000 total_ms=45678 race=true\n"}
{"Action":"output","Test":"TestKillProcessor","Output":"--- PASS: TestKillProcessor (45.70s)\n"}
{"Action":"pass","Test":"TestKillProcessor"}
{"Action":"output","Test":"TestPoisonMessages/crawl","Output":"    run_test.go:210: CHAOS scenario=poison pages_expected=1000 pages_stored=999 duplicates=1 refetches=0 faults=0 recover_ms=0 total_ms=9000 race=true refetch_bound=50\n"}
{"Action":"fail","Test":"TestPoisonMessages/crawl"}
{"Action":"fail","Test":"TestPoisonMessages"}
{"Action":"output","Output":"ok  \tgithub.com/trawlhq/trawl/chaos\t99.1s\n"}
{"Action":"output","Test":"TestRecrawlSameRequestIDTwice","Output":"    recrawl_test.go:105: CHAOS scenario=recrawl-same-request-id sends=5 request_ids=2 fetches=2\n"}
{"Action":"pass","Test":"TestRecrawlSameRequestIDTwice"}
`

func TestReport(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	args := []string{"-mode", "full", "-version", "v0.1.0", "-date", "2026-12-07", "-go", "go1.26.8"}
	if err := run(args, strings.NewReader(events), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	wantLines := []string{
		"This run: Trawl v0.1.0, `make chaos` (`TRAWL_CHAOS=full`: crawls of 6,000 pages per crash scenario), 2026-12-07, race detector on, go1.26.8: **1 of 3 scenarios did not pass**.",
		"| Scenario | Fault injected | Pages expected | Stored | Duplicated | Refetches (bound) | Lease expiries (bound) | Faults | Time to recover (bound) | Crawl time | Other figures | Result |",
		"| `kill-processor` | `kill -9` of the processor, five times during the crawl | 2000 | 2000 | 0 | 37 (≤ 50) | 14 (any) | 5 | 1.2 s (≤ 20.0 s) | 45.7 s | — | passed |",
		"| `poison` | three poison messages: undecodable, unpersistable, oversized | 1000 | 999 | 1 | 0 | — | 0 | — | 9.0 s | refetch_bound=50 | **failed** |",
		"| `recrawl-same-request-id` | re-crawl RPC requests sent twice with the same request id | — | — | — | — | — | — | — | — | sends=5 request_ids=2 fetches=2 | passed |",
	}
	var table []string
	for line := range strings.Lines(got) {
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, "This run:") || (strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "|---")) {
			table = append(table, line)
		}
	}
	if diff := cmp.Diff(wantLines, table); diff != "" {
		t.Errorf("report (-want +got):\n%s\n\nwhole report:\n%s", diff, got)
	}
}

func TestReportRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input string
		args        []string
		want        string
	}{
		{"no scenarios", `{"Action":"pass","Test":"TestX"}` + "\n", nil, "no CHAOS scenario= lines"},
		{"not events", "=== RUN TestX\n", nil, "read test events"},
		{"bad figure", `{"Action":"output","Test":"TestX","Output":"CHAOS scenario=x pages\n"}` + "\n", nil, "not key=value"},
		{"bad mode", "", []string{"-mode", "huge"}, "-mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(tt.args, strings.NewReader(tt.input), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestEveryScenarioHasAFault checks that each scenario name the chaos suite passes to startRun
// or privateBrokerRun has a description of its fault for the report.
func TestEveryScenarioHasAFault(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	nameRE := regexp.MustCompile(`(?:startRun|privateBrokerRun)\(t, "([a-z0-9-]+)",|CHAOS scenario=([a-z0-9-]+) `)
	var names []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range nameRE.FindAllStringSubmatch(string(src), -1) {
			names = append(names, m[1]+m[2])
		}
	}
	if len(names) < 8 {
		t.Fatalf("found only %d scenario names in ../*_test.go: %v", len(names), names)
	}
	// Names built at run time: "kill-"+bin and "failpoint-"+fp.
	names = append(names, "kill-processor", "kill-crawler", "failpoint-processor-after-commit", "failpoint-publish-before-confirm")
	for _, n := range names {
		if faults[n] == "" {
			t.Errorf("scenario %q has no fault description in faults", n)
		}
	}
}

// TestDurabilityReportIsCurrent checks the committed docs/DURABILITY.md: generated by this
// command, every scenario passed, and every scenario the suite has is in it (a new scenario
// needs `make chaos` run again).
func TestDurabilityReportIsCurrent(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../../docs/DURABILITY.md")
	if err != nil {
		t.Fatal(err)
	}
	report := string(b)
	if !strings.HasPrefix(report, "# Durability report\n") || !strings.Contains(report, ": every scenario passed.") {
		t.Errorf("docs/DURABILITY.md is not a generated report of a run in which every scenario passed")
	}
	for name := range faults {
		if !strings.Contains(report, "| `"+name+"` |") {
			t.Errorf("docs/DURABILITY.md has no row for scenario %q: run make chaos", name)
		}
	}
}

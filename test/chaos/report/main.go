// Command report renders the chaos suite's scenario figures as the durability report,
// docs/DURABILITY.md. It reads the suite's test events on stdin — the output of `go test -json`,
// or `go tool test2json` run over `go test -v` output, which is what `make chaos` does — takes
// every `CHAOS scenario=… key=value …` line a scenario logged, with whether its test passed,
// and writes a markdown table on stdout (or to -o).
//
//	go tool test2json < chaos.out | go run ./test/chaos/report -mode full -version v0.1.0 -o docs/DURABILITY.md
//
// Figures it does not know (a scenario's own, or ones added later) are kept, in a column of
// their own, so the report never drops what a scenario measured.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	var m meta
	out := fs.String("o", "", "write the report to this file instead of stdout")
	fs.StringVar(&m.Mode, "mode", "bounded", "the suite's mode: full (make chaos, TRAWL_CHAOS=full) or bounded (go test ./test/chaos/)")
	fs.StringVar(&m.Version, "version", "dev", "the version of Trawl the suite ran (git describe)")
	fs.StringVar(&m.Date, "date", time.Now().UTC().Format(time.DateOnly), "the date of the run")
	fs.StringVar(&m.Go, "go", runtime.Version(), "the Go version the suite was built with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if m.Mode != "full" && m.Mode != "bounded" {
		return fmt.Errorf("-mode: want full or bounded, got %q", m.Mode)
	}
	scenarios, err := parseEvents(stdin)
	if err != nil {
		return err
	}
	if len(scenarios) == 0 {
		return errors.New("no CHAOS scenario= lines in the input: was it the chaos suite's go test -json output?")
	}
	if *out == "" {
		return render(stdout, m, scenarios)
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := render(f, m, scenarios); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// meta describes the run.
type meta struct {
	Mode, Version, Date, Go string
}

// event is one test2json event (cmd/test2json).
type event struct {
	Action string
	Test   string
	Output string
}

// field is one key=value figure of a CHAOS line.
type field struct{ Key, Value string }

// scenario is one CHAOS line and the outcome of the test that logged it.
type scenario struct {
	Name   string
	Test   string
	Fields []field // in the order logged, scenario= excluded
	Result string  // pass, fail, or "" when the test did not finish
}

func (s scenario) get(key string) (string, bool) {
	for _, f := range s.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// parseEvents reads test2json events and returns the scenarios, sorted by name.
func parseEvents(r io.Reader) ([]scenario, error) {
	var scenarios []scenario
	results := map[string]string{}
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var ev event
		if err := dec.Decode(&ev); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read test events: %w", err)
		}
		switch ev.Action {
		case "pass", "fail", "skip":
			if ev.Test != "" {
				results[ev.Test] = ev.Action
			}
		case "output":
			_, line, ok := strings.Cut(ev.Output, "CHAOS scenario=")
			if !ok {
				continue
			}
			s := scenario{Test: ev.Test}
			for i, kv := range strings.Fields("scenario=" + line) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return nil, fmt.Errorf("%s: %q is not key=value", ev.Test, kv)
				}
				if i == 0 {
					s.Name = v
					continue
				}
				s.Fields = append(s.Fields, field{k, v})
			}
			scenarios = append(scenarios, s)
		}
	}
	for i := range scenarios {
		// A scenario's outcome is its test's: the top-level test's when it ran as a subtest.
		t := scenarios[i].Test
		for t != "" {
			if res, ok := results[t]; ok {
				scenarios[i].Result = res
				break
			}
			j := strings.LastIndex(t, "/")
			if j < 0 {
				break
			}
			t = t[:j]
		}
	}
	sort.SliceStable(scenarios, func(i, j int) bool { return scenarios[i].Name < scenarios[j].Name })
	return scenarios, nil
}

// faults says what each scenario injects; a scenario missing here shows its test's name.
var faults = map[string]string{
	"kill-processor":                   "`kill -9` of the processor, five times during the crawl",
	"kill-crawler":                     "`kill -9` of the crawler, five times during the crawl",
	"failpoint-processor-after-commit": "processor exits after a batch's commit, before its acks",
	"failpoint-publish-before-confirm": "crawler exits after publishing a result, before the broker confirms it",
	"broker-loses-messages":            "every message in transit lost: workers killed, work queues purged",
	"poison":                           "three poison messages: undecodable, unpersistable, oversized",
	"recrawl-base-crawl":               "the crawl under the re-crawl RPC scenario",
	"recrawl-same-request-id":          "re-crawl RPC requests sent twice with the same request id",
	"broker-stopped-30s":               "RabbitMQ stopped for 30 s",
	"network-partition-35s":            "silent 35 s network partition between the workers and RabbitMQ",
	"postgres-restarted":               "PostgreSQL restarted mid-crawl",
	"memory-alarm":                     "RabbitMQ memory alarm: publishers blocked",
	"sigterm-during-memory-alarm":      "SIGTERM to every worker during a memory alarm",
	"unreachable-at-startup":           "PostgreSQL and RabbitMQ down when the workers start",
	"sigterm":                          "SIGTERM to every worker while fetches are in flight",
	"kill-processor-mid-delete":        "`kill -9` of the processor while it purges a deleted target",
	"delete-while-crawling":            "targets deleted through the API, round after round, while two processors store their results",
	"broker-refuses-results":           "the pages queue unbound for 1 s: the broker returns results as unroutable",
}

// columns are the figures with a column of their own, in order, with their headings.
var columns = []struct{ Key, Heading string }{
	{"pages_expected", "Pages expected"},
	{"pages_stored", "Stored"},
	{"duplicates", "Duplicated"},
	{"refetches", "Refetches (bound)"},
	{"lease_expiries", "Lease expiries (bound)"},
	{"faults", "Faults"},
	{"recover_ms", "Time to recover (bound)"},
	{"total_ms", "Crawl time"},
}

// header holds the figures shown in the run's description rather than per scenario.
var header = map[string]bool{"race": true}

// millis formats a figure in milliseconds as seconds.
func millis(v string) string {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return v
	}
	return strconv.FormatFloat(float64(n)/1000, 'f', 1, 64) + " s"
}

// boundPrefix names a figure's bound: the scenario fails when the figure exceeds it ("any":
// no bound).
const boundPrefix = "max_"

func cell(s scenario, key string) string {
	v, ok := s.get(key)
	if !ok {
		return "—"
	}
	bound, bounded := s.get(boundPrefix + key)
	switch key {
	case "recover_ms":
		if f, _ := s.get("faults"); f == "0" {
			return "—" // nothing to recover from
		}
		v = millis(v)
		if bounded && bound != "any" {
			bound = millis(bound)
		}
	case "total_ms":
		return millis(v)
	}
	switch {
	case !bounded:
		return v
	case bound == "any":
		return v + " (any)"
	}
	return v + " (≤ " + bound + ")"
}

func render(w io.Writer, m meta, scenarios []scenario) error {
	b := &strings.Builder{}
	race := "off"
	failed := 0
	for _, s := range scenarios {
		if v, _ := s.get("race"); v == "true" {
			race = "on"
		}
		if s.Result != "pass" {
			failed++
		}
	}
	how := "`make chaos` (`TRAWL_CHAOS=full`: crawls of 6,000 pages per crash scenario)"
	if m.Mode == "bounded" {
		how = "`go test ./test/chaos/` (the bounded suite of `make test`: crawls of 2,000 pages per crash scenario)"
	}
	outcome := "every scenario passed"
	if failed > 0 {
		outcome = fmt.Sprintf("**%d of %d scenarios did not pass**", failed, len(scenarios))
	}
	fmt.Fprintf(b, `# Durability report

What Trawl does when things break. The chaos suite (test/chaos/, docs/ARCHITECTURE.md, Reliability)
runs the real binaries against real PostgreSQL and RabbitMQ, injects one kind of fault per
scenario while a synthetic site of known size is crawled, and then checks that every page was
stored exactly once, nothing was left pending, and nothing unexpected was dead-lettered. This
file is generated from the suite's own figures by `+"`make chaos`"+` (test/chaos/report) and refreshed
for each release; do not edit it by hand.

This run: Trawl %s, %s, %s, race detector %s, %s: %s.

`, m.Version, how, m.Date, race, m.Go, outcome)
	b.WriteString("| Scenario | Fault injected |")
	for _, c := range columns {
		b.WriteString(" " + c.Heading + " |")
	}
	b.WriteString(" Other figures | Result |\n|---|---|")
	for range columns {
		b.WriteString("--:|")
	}
	b.WriteString("---|---|\n")
	known := map[string]bool{}
	for _, c := range columns {
		known[c.Key] = true
		known[boundPrefix+c.Key] = true
	}
	for _, s := range scenarios {
		fault, ok := faults[s.Name]
		if !ok {
			fault = "see `" + s.Test + "`"
		}
		fmt.Fprintf(b, "| `%s` | %s |", s.Name, fault)
		for _, c := range columns {
			b.WriteString(" " + cell(s, c.Key) + " |")
		}
		var other []string
		for _, f := range s.Fields {
			if !known[f.Key] && !header[f.Key] {
				other = append(other, f.Key+"="+f.Value)
			}
		}
		if len(other) == 0 {
			other = []string{"—"}
		}
		result := s.Result
		switch result {
		case "pass":
			result = "passed"
		case "fail":
			result = "**failed**"
		case "":
			result = "**did not finish**"
		}
		fmt.Fprintf(b, " %s | %s |\n", strings.Join(other, " "), result)
	}
	b.WriteString(`
- **Pages expected**: the in-scope pages of the synthetic site; **Stored**: distinct pages
  stored. They must be equal.
- **Duplicated**: pages stored more than once. Must be 0: delivery is at-least-once, the
  effect exactly once.
- **Refetches**: requests to the site beyond one per expected page — at-least-once delivery
  at work (a job whose result was lost with a killed worker, or whose lease ran out, is fetched
  again). A baseline of 1 is a request the crawl makes for something other than an expected
  page.
- **Lease expiries**: URLs that came back through their lease rather than through the broker's
  redelivery (minutes instead of seconds). Must be 0 except where the fault can lose a dispatch
  for good (a killed scheduler, purged queues).
- **Faults**: how many times the fault was injected; **Time to recover**: the longest time
  from the end of a fault until pages were being stored again; **Crawl time**: from adding the
  target until it was done, faults included.
- **(bound)**: the scenario fails when its figure exceeds the bound in brackets ("any": not
  bounded), set from runs of correct code with a margin, so that recovery through the lease
  cannot pass for recovery through redelivery.
- **Other figures**: whatever else the scenario measured, as it logged it.
`)
	_, err := io.WriteString(w, b.String())
	return err
}

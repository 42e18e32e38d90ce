package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStatusClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   string
	}{{0, "none"}, {99, "none"}, {200, "2xx"}, {204, "2xx"}, {301, "3xx"}, {404, "4xx"}, {503, "5xx"}, {600, "none"}}
	for _, tt := range tests {
		if got := StatusClass(tt.status); got != tt.want {
			t.Errorf("StatusClass(%d) = %q, want %q", tt.status, got, tt.want)
		}
	}
}

// ObserveFetch is the only writer of the fetch metrics, so deltas are exact as long as no
// other test in this package fetches.
func TestObserveFetch(t *testing.T) {
	okBefore := testutil.ToFloat64(Fetches.WithLabelValues("ok", "2xx"))
	dnsBefore := testutil.ToFloat64(Fetches.WithLabelValues("dns", "none"))
	otherBefore := testutil.ToFloat64(Fetches.WithLabelValues("other", "none"))
	bytesBefore := testutil.ToFloat64(FetchedBytes)

	ObserveFetch(200, false, "", 30*time.Millisecond, 1000)
	ObserveFetch(0, true, "dns", time.Millisecond, 0)
	// An unknown class must not become a label value of its own.
	ObserveFetch(0, true, "https://evil.example/some/url", time.Millisecond, 0)

	got := []float64{
		testutil.ToFloat64(Fetches.WithLabelValues("ok", "2xx")) - okBefore,
		testutil.ToFloat64(Fetches.WithLabelValues("dns", "none")) - dnsBefore,
		testutil.ToFloat64(Fetches.WithLabelValues("other", "none")) - otherBefore,
		testutil.ToFloat64(FetchedBytes) - bytesBefore,
	}
	if diff := cmp.Diff([]float64{1, 1, 1, 1000}, got); diff != "" {
		t.Errorf("counter deltas (-want +got):\n%s", diff)
	}
}

// allowedLabels is every label name a Trawl metric may carry: none of them can hold a URL or a
// host name.
var allowedLabels = []string{"outcome", "status_class", "effect", "kind", "type", "method", "code", "binary", "version"}

func TestRegistryPerBinary(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{Crawler, Processor, Dashboard} {
		t.Run(bin, func(t *testing.T) {
			t.Parallel()
			reg := New(bin, "test")
			if bin != Dashboard {
				reg.InFlight(func() int64 { return 7 })
			}
			srv := httptest.NewServer(reg.Handler())
			defer srv.Close()
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			text := string(body)
			for _, want := range []string{
				"go_goroutines ", "process_resident_memory_bytes ",
				`trawl_build_info{binary="` + bin + `",version="test"} 1`,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
			if bin != Dashboard && !strings.Contains(text, "trawl_inflight_messages 7") {
				t.Errorf("/metrics lacks trawl_inflight_messages 7:\n%s", text)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					for _, lp := range m.GetLabel() {
						if strings.HasPrefix(mf.GetName(), "trawl_") && !slices.Contains(allowedLabels, lp.GetName()) {
							t.Errorf("%s has label %q, not in the allowed set", mf.GetName(), lp.GetName())
						}
					}
				}
			}
		})
	}
}

func TestExportedIncludesEveryDef(t *testing.T) {
	t.Parallel()
	exp := Exported()
	for _, d := range Defs() {
		name := d.Name
		if d.Type == "histogram" {
			name += "_bucket"
		}
		if !slices.Contains(exp, name) {
			t.Errorf("Exported() lacks %s", name)
		}
		if !strings.HasPrefix(d.Name, "trawl_") {
			t.Errorf("%s lacks the trawl_ prefix", d.Name)
		}
	}
	for _, n := range []string{"go_goroutines", "process_cpu_seconds_total", "go_gc_duration_seconds_count"} {
		if !slices.Contains(exp, n) {
			t.Errorf("Exported() lacks %s", n)
		}
	}
}

// Every metric is documented in docs/OPERATIONS.md.
func TestEveryMetricDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range Defs() {
		if !strings.Contains(string(doc), "`"+d.Name+"`") {
			t.Errorf("docs/OPERATIONS.md does not document `%s`", d.Name)
		}
	}
}

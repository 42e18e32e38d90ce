package target_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/target"
)

// fields lists the fields an error names, in order: every one of a FieldErrors.
func fields(err error) []string {
	var fes target.FieldErrors
	if !errors.As(err, &fes) {
		return nil
	}
	out := make([]string, len(fes))
	for i, fe := range fes {
		out[i] = fe.Field
	}
	return out
}

// Validation names every field at fault at once, in the API's order, and errors.As still finds
// the first as a *FieldError (the API's {"error", "field"}).
func TestRequestSpecReportsEveryField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  target.Request
		want []string
	}{
		{"all at fault", target.Request{SeedURL: "ftp://a.com/", Scope: "planet", Include: "(", Exclude: "[z-a]",
			Name: string(make([]byte, 201)), MaxDepth: ptr(-1), MaxPages: ptr(0), PerHostRPS: ptr(-1.0),
			MaxAttempts: ptr(0), RecrawlInterval: "often"},
			[]string{"seed_url", "scope", "include", "exclude", "name", "max_depth", "max_pages", "per_host_rps", "max_attempts", "recrawl_interval"}},
		{"prefix and limits", target.Request{SeedURL: "http://a.com/", Scope: "prefix", ScopePrefix: "http://b.com/", MaxPages: ptr(0), RecrawlInterval: "5s"},
			[]string{"scope_prefix", "max_pages", "recrawl_interval"}},
		{"one", target.Request{SeedURL: "http://a.com/", MaxAttempts: ptr(0)}, []string{"max_attempts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.req.Spec()
			if diff := cmp.Diff(tt.want, fields(err)); diff != "" {
				t.Fatalf("fields at fault (-want +got):\n%s", diff)
			}
			if !isField(err, tt.want[0]) {
				t.Fatalf("errors.As finds %v, want the first, %q", err, tt.want[0])
			}
		})
	}
}

func TestPatchApply(t *testing.T) {
	t.Parallel()
	base, err := target.Request{SeedURL: "http://a.com/docs/", Scope: "prefix", Name: "A", RecrawlInterval: "24h"}.Spec()
	if err != nil {
		t.Fatal(err)
	}
	good := []struct {
		name  string
		patch target.Patch
		want  func(s *target.Spec)
	}{
		{"nothing", target.Patch{}, func(*target.Spec) {}},
		{"limits and rate", target.Patch{MaxPages: ptr(50), MaxDepth: ptr(2), MaxAttempts: ptr(9), PerHostRPS: ptr(0.5)},
			func(s *target.Spec) { s.MaxPages, s.MaxDepth, s.MaxAttempts, s.PerHostRPS = 50, 2, 9, 0.5 }},
		{"patterns and sitemaps", target.Patch{Include: ptr(`/docs/a`), Exclude: ptr(`\.pdf$`), Sitemaps: ptr(false)},
			func(s *target.Spec) { s.Include, s.Exclude, s.Sitemaps = `/docs/a`, `\.pdf$`, false }},
		{"recrawl never", target.Patch{RecrawlInterval: ptr("")}, func(s *target.Spec) { s.RecrawlInterval = 0 }},
		{"recrawl weekly", target.Patch{RecrawlInterval: ptr("168h")}, func(s *target.Spec) { s.RecrawlInterval = 168 * time.Hour }},
		{"blank name is the host's", target.Patch{Name: ptr("  ")}, func(s *target.Spec) { s.Name = "a.com" }},
		// The fixed fields may be sent back as they are, in any spelling of the same.
		{"same seed and scope", target.Patch{SeedURL: ptr("HTTP://A.com:80/docs/"), Scope: ptr(" Prefix"), ScopePrefix: ptr("")},
			func(*target.Spec) {}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.patch.Apply(base)
			if err != nil {
				t.Fatal(err)
			}
			want := base
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Apply (-want +got):\n%s", diff)
			}
		})
	}
	bad := []struct {
		name  string
		patch target.Patch
		want  []string
	}{
		{"another seed", target.Patch{SeedURL: ptr("http://b.com/")}, []string{"seed_url"}},
		{"another scope", target.Patch{Scope: ptr("host")}, []string{"scope"}},
		{"another prefix", target.Patch{ScopePrefix: ptr("http://a.com/blog/")}, []string{"scope_prefix"}},
		{"everything wrong", target.Patch{Include: ptr("("), Exclude: ptr("[z-a]"), MaxDepth: ptr(-1), MaxPages: ptr(0),
			PerHostRPS: ptr(2000.0), MaxAttempts: ptr(0), RecrawlInterval: ptr("often")},
			[]string{"include", "exclude", "max_depth", "max_pages", "per_host_rps", "max_attempts", "recrawl_interval"}},
		{"recrawl too short", target.Patch{RecrawlInterval: ptr("10s")}, []string{"recrawl_interval"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.patch.Apply(base)
			if diff := cmp.Diff(tt.want, fields(err)); diff != "" {
				t.Fatalf("fields at fault (-want +got):\n%s", diff)
			}
		})
	}
}

// The edit form's request sets every editable field, to its default where it is left empty.
func TestRequestPatchDefaults(t *testing.T) {
	t.Parallel()
	base, err := target.Request{SeedURL: "http://a.com/", MaxPages: ptr(7), PerHostRPS: ptr(3.0), Sitemaps: ptr(false),
		Include: "x", RecrawlInterval: "1h"}.Spec()
	if err != nil {
		t.Fatal(err)
	}
	got, err := target.Request{Name: "N", MaxDepth: ptr(1)}.Patch().Apply(base)
	if err != nil {
		t.Fatal(err)
	}
	want := target.Spec{Name: "N", SeedURL: "http://a.com/", Scope: "host", MaxDepth: 1, MaxPages: target.DefaultMaxPages,
		PerHostRPS: target.DefaultPerHostRPS, MaxAttempts: target.DefaultMaxAttempts, Sitemaps: target.DefaultSitemaps,
		SearchLanguage: target.DefaultSearchLanguage}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Apply(Request.Patch) (-want +got):\n%s", diff)
	}
}

// Holds keeps the seed whatever the patterns say, and any other URL only within the depth and
// the scope.
func TestSpecHolds(t *testing.T) {
	t.Parallel()
	s := target.Spec{SeedURL: "http://a.com/", Scope: "host", MaxDepth: 2, Include: `/docs/`}
	c, err := s.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		url   string
		depth int
		want  bool
	}{
		{"http://a.com/", 0, true},
		{"http://a.com/docs/x", 2, true},
		{"http://a.com/docs/x", 3, false},
		{"http://a.com/blog/x", 1, false},
		{"http://b.com/docs/x", 1, false},
	} {
		if got := s.Holds(c, tt.url, tt.depth); got != tt.want {
			t.Errorf("Holds(%q, %d) = %v, want %v", tt.url, tt.depth, got, tt.want)
		}
	}
}

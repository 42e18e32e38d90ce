package target_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/target"
)

func ptr[T any](v T) *T { return &v }

func TestRequestSpecRefusesBadFieldsByName(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name  string
		req   target.Request
		field string
	}{
		{"missing seed", target.Request{}, "seed_url"},
		{"blank seed", target.Request{SeedURL: "   "}, "seed_url"},
		{"ftp", target.Request{SeedURL: "ftp://example.com/"}, "seed_url"},
		{"javascript", target.Request{SeedURL: "javascript:alert(1)"}, "seed_url"},
		{"relative", target.Request{SeedURL: "/just/a/path"}, "seed_url"},
		{"unparsable", target.Request{SeedURL: "http://exa mple.com/%zz"}, "seed_url"},
		{"no host", target.Request{SeedURL: "http:///x"}, "seed_url"},
		{"five-part IPv4 host", target.Request{SeedURL: "http://1.2.3.4.5/"}, "seed_url"},
		{"IPv4 part out of range", target.Request{SeedURL: "http://10.0.0.256/"}, "seed_url"},
		{"host not UTF-8 once decoded", target.Request{SeedURL: "https://example.com%80/"}, "seed_url"},
		{"scope", target.Request{SeedURL: "http://a.com/", Scope: "planet"}, "scope"},
		{"prefix off host", target.Request{SeedURL: "http://a.com/", Scope: "prefix", ScopePrefix: "http://b.com/"}, "scope_prefix"},
		{"name too long", target.Request{SeedURL: "http://a.com/", Name: string(make([]byte, 201))}, "name"},
		{"depth", target.Request{SeedURL: "http://a.com/", MaxDepth: ptr(-1)}, "max_depth"},
		{"depth too deep", target.Request{SeedURL: "http://a.com/", MaxDepth: ptr(1001)}, "max_depth"},
		{"pages zero", target.Request{SeedURL: "http://a.com/", MaxPages: ptr(0)}, "max_pages"},
		{"pages too many", target.Request{SeedURL: "http://a.com/", MaxPages: ptr(target.MaxPagesLimit + 1)}, "max_pages"},
		{"rps negative", target.Request{SeedURL: "http://a.com/", PerHostRPS: ptr(-0.5)}, "per_host_rps"},
		{"rps one in 115 days", target.Request{SeedURL: "http://a.com/", PerHostRPS: ptr(0.0000001)}, "per_host_rps"},
		{"rps check-constraint 500", target.Request{SeedURL: "http://a.com/", PerHostRPS: ptr(3.3e-7)}, "per_host_rps"},
		{"rps just under a day", target.Request{SeedURL: "http://a.com/", PerHostRPS: ptr(1.0 / 86401)}, "per_host_rps"},
		{"rps NaN", target.Request{SeedURL: "http://a.com/", PerHostRPS: ptr(math.NaN())}, "per_host_rps"},
		{"rps Inf", target.Request{SeedURL: "http://a.com/", PerHostRPS: ptr(math.Inf(1))}, "per_host_rps"},
		{"rps above 1000", target.Request{SeedURL: "http://a.com/", PerHostRPS: ptr(1001.0)}, "per_host_rps"},
		{"attempts", target.Request{SeedURL: "http://a.com/", MaxAttempts: ptr(0)}, "max_attempts"},
		{"attempts too many", target.Request{SeedURL: "http://a.com/", MaxAttempts: ptr(101)}, "max_attempts"},
		{"recrawl", target.Request{SeedURL: "http://a.com/", RecrawlInterval: "often"}, "recrawl_interval"},
		{"recrawl too short", target.Request{SeedURL: "http://a.com/", RecrawlInterval: "5s"}, "recrawl_interval"},
		{"recrawl zero", target.Request{SeedURL: "http://a.com/", RecrawlInterval: "0s"}, "recrawl_interval"},
		{"recrawl negative", target.Request{SeedURL: "http://a.com/", RecrawlInterval: "-5m"}, "recrawl_interval"},
		{"recrawl with spaces", target.Request{SeedURL: "http://a.com/", RecrawlInterval: " 24h"}, "recrawl_interval"},
		{"include regex", target.Request{SeedURL: "http://a.com/", Include: "docs/(unclosed"}, "include"},
		{"exclude regex", target.Request{SeedURL: "http://a.com/", Exclude: "[z-a]"}, "exclude"},
		{"search language not a name", target.Request{SeedURL: "http://a.com/", SearchLanguage: "english; DROP TABLE pages"}, "search_language"},
		{"search language qualified", target.Request{SeedURL: "http://a.com/", SearchLanguage: "pg_catalog.english"}, "search_language"},
		{"search language too long", target.Request{SeedURL: "http://a.com/", SearchLanguage: strings.Repeat("e", 64)}, "search_language"},
		// The first field at fault, in the API's order, is the one named.
		{"seed before recrawl", target.Request{SeedURL: "ftp://a.com/", RecrawlInterval: "often"}, "seed_url"},
		{"pages before recrawl", target.Request{SeedURL: "http://a.com/", MaxPages: ptr(0), RecrawlInterval: "often"}, "max_pages"},
		{"scope before include", target.Request{SeedURL: "http://a.com/", Scope: "x", Include: "("}, "scope"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.req.Spec()
			var fe *target.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Spec = %v, want an error on %q", err, tt.field)
			}
		})
	}
}

func TestRequestSpecAppliesDefaultsAndNormalises(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  target.Request
		want target.Spec
	}{
		{"defaults, canonical seed, name from host", target.Request{SeedURL: " HTTP://Example.COM:80/docs/#top ", PerHostRPS: ptr(0.0), RecrawlInterval: "24h"},
			target.Spec{Name: "example.com", SeedURL: "http://example.com/docs/", Scope: "host",
				MaxDepth: target.DefaultMaxDepth, MaxPages: target.DefaultMaxPages, PerHostRPS: 0, MaxAttempts: target.DefaultMaxAttempts,
				RecrawlInterval: 24 * time.Hour, Sitemaps: true, SearchLanguage: "simple"}},
		// A host written as a number is its IPv4 address in dotted decimal.
		{"numeric host", target.Request{SeedURL: "http://0x7f000001:8080/"},
			target.Spec{Name: "127.0.0.1:8080", SeedURL: "http://127.0.0.1:8080/", Scope: "host",
				MaxDepth: 5, MaxPages: 10000, PerHostRPS: 1, MaxAttempts: 4, Sitemaps: true, SearchLanguage: "simple"}},
		{"one request a day, options", target.Request{SeedURL: "http://a.com/", Name: "  A  ", PerHostRPS: ptr(1.0 / 86400),
			Sitemaps: ptr(false), SearchLanguage: " English ", Include: `^http://a\.com/docs/`, Exclude: `\.pdf$`, MaxDepth: ptr(0), MaxPages: ptr(1), MaxAttempts: ptr(100)},
			target.Spec{Name: "A", SeedURL: "http://a.com/", Scope: "host", MaxDepth: 0, MaxPages: 1, PerHostRPS: 1.0 / 86400,
				MaxAttempts: 100, Include: `^http://a\.com/docs/`, Exclude: `\.pdf$`, SearchLanguage: "english"}},
		{"prefix defaults to the seed's directory", target.Request{SeedURL: "http://a.com/docs/x.html", Scope: " PREFIX "},
			target.Spec{Name: "a.com", SeedURL: "http://a.com/docs/x.html", Scope: "prefix", ScopePrefix: "http://a.com/docs/",
				MaxDepth: 5, MaxPages: 10000, PerHostRPS: 1, MaxAttempts: 4, Sitemaps: true, SearchLanguage: "simple"}},
		{"prefix canonical", target.Request{SeedURL: "http://a.com/", Scope: "prefix", ScopePrefix: " HTTP://A.com/Docs/../b "},
			target.Spec{Name: "a.com", SeedURL: "http://a.com/", Scope: "prefix", ScopePrefix: "http://a.com/b",
				MaxDepth: 5, MaxPages: 10000, PerHostRPS: 1, MaxAttempts: 4, Sitemaps: true, SearchLanguage: "simple"}},
		{"no prefix outside a prefix scope", target.Request{SeedURL: "http://a.com/", Scope: "domain", ScopePrefix: "http://b.com/"},
			target.Spec{Name: "a.com", SeedURL: "http://a.com/", Scope: "domain",
				MaxDepth: 5, MaxPages: 10000, PerHostRPS: 1, MaxAttempts: 4, Sitemaps: true, SearchLanguage: "simple"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.req.Spec()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("Spec (-want +got):\n%s", diff)
			}
			// A normal spec is valid and stays as it is.
			again, err := got.Validate()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Fatalf("Validate of a normal spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpecSeedHost(t *testing.T) {
	t.Parallel()
	for seed, want := range map[string]string{
		"http://example.com/":       "example.com",
		"http://127.0.0.1:8080/a":   "127.0.0.1:8080",
		"https://[::1]:8443/":       "[::1]:8443",
		"http://exa mple.com/%zz":   "",
		"https://sub.example.org/x": "sub.example.org",
	} {
		if got := (target.Spec{SeedURL: seed}).SeedHost(); got != want {
			t.Errorf("SeedHost(%q) = %q, want %q", seed, got, want)
		}
	}
}

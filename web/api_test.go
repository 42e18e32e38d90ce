package web

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/store"
)

func ptr[T any](v T) *T { return &v }

func TestTargetRequestValidate(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name  string
		req   TargetRequest
		field string
	}{
		{"missing seed", TargetRequest{}, "seed_url"},
		{"blank seed", TargetRequest{SeedURL: "   "}, "seed_url"},
		{"ftp", TargetRequest{SeedURL: "ftp://example.com/"}, "seed_url"},
		{"javascript", TargetRequest{SeedURL: "javascript:alert(1)"}, "seed_url"},
		{"relative", TargetRequest{SeedURL: "/just/a/path"}, "seed_url"},
		{"unparsable", TargetRequest{SeedURL: "http://exa mple.com/%zz"}, "seed_url"},
		{"no host", TargetRequest{SeedURL: "http:///x"}, "seed_url"},
		{"five-part IPv4 host", TargetRequest{SeedURL: "http://1.2.3.4.5/"}, "seed_url"},
		{"IPv4 part out of range", TargetRequest{SeedURL: "http://10.0.0.256/"}, "seed_url"},
		{"host not UTF-8 once decoded", TargetRequest{SeedURL: "https://example.com%80/"}, "seed_url"},
		{"scope", TargetRequest{SeedURL: "http://a.com/", Scope: "planet"}, "scope"},
		{"prefix off host", TargetRequest{SeedURL: "http://a.com/", Scope: "prefix", ScopePrefix: "http://b.com/"}, "scope_prefix"},
		{"depth", TargetRequest{SeedURL: "http://a.com/", MaxDepth: ptr(-1)}, "max_depth"},
		{"pages zero", TargetRequest{SeedURL: "http://a.com/", MaxPages: ptr(0)}, "max_pages"},
		{"rps negative", TargetRequest{SeedURL: "http://a.com/", PerHostRPS: ptr(-0.5)}, "per_host_rps"},
		{"rps one in 115 days", TargetRequest{SeedURL: "http://a.com/", PerHostRPS: ptr(0.0000001)}, "per_host_rps"},
		{"rps check-constraint 500", TargetRequest{SeedURL: "http://a.com/", PerHostRPS: ptr(3.3e-7)}, "per_host_rps"},
		{"rps just under a day", TargetRequest{SeedURL: "http://a.com/", PerHostRPS: ptr(1.0 / 86401)}, "per_host_rps"},
		{"rps NaN", TargetRequest{SeedURL: "http://a.com/", PerHostRPS: ptr(math.NaN())}, "per_host_rps"},
		{"rps Inf", TargetRequest{SeedURL: "http://a.com/", PerHostRPS: ptr(math.Inf(1))}, "per_host_rps"},
		{"rps above 1000", TargetRequest{SeedURL: "http://a.com/", PerHostRPS: ptr(1001.0)}, "per_host_rps"},
		{"attempts", TargetRequest{SeedURL: "http://a.com/", MaxAttempts: ptr(0)}, "max_attempts"},
		{"recrawl", TargetRequest{SeedURL: "http://a.com/", RecrawlInterval: "often"}, "recrawl_interval"},
		{"recrawl too short", TargetRequest{SeedURL: "http://a.com/", RecrawlInterval: "5s"}, "recrawl_interval"},
		{"include regex", TargetRequest{SeedURL: "http://a.com/", Include: "docs/(unclosed"}, "include"},
		{"exclude regex", TargetRequest{SeedURL: "http://a.com/", Exclude: "[z-a]"}, "exclude"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.req.Validate()
			var fe *fieldError
			if !errors.As(err, &fe) || fe.field != tt.field {
				t.Fatalf("Validate = %v, want an error on %q", err, tt.field)
			}
		})
	}

	got, err := TargetRequest{SeedURL: " HTTP://Example.COM:80/docs/#top ", PerHostRPS: ptr(0.0), RecrawlInterval: "24h"}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	want := store.NewTarget{
		Name: "example.com", SeedURL: "http://example.com/docs/", SeedHost: "example.com", Scope: "host",
		MaxDepth: DefaultMaxDepth, MaxPages: DefaultMaxPages, PerHostRPS: 0, MaxAttempts: DefaultMaxAttempts,
		RecrawlInterval: 24 * time.Hour, TargetOptions: store.TargetOptions{Sitemaps: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Validate (-want +got):\n%s", diff)
	}
	// A host written as a number is its IPv4 address in dotted decimal, for the seed and the
	// politeness key alike.
	got, err = TargetRequest{SeedURL: "http://0x7f000001:8080/"}.Validate()
	if err != nil || got.SeedURL != "http://127.0.0.1:8080/" || got.SeedHost != "127.0.0.1:8080" {
		t.Fatalf("Validate(0x7f000001) = seed %q host %q, %v; want 127.0.0.1:8080", got.SeedURL, got.SeedHost, err)
	}
	got, err = TargetRequest{SeedURL: "http://a.com/", PerHostRPS: ptr(1.0 / 86400)}.Validate()
	if err != nil || got.PerHostRPS != 1.0/86400 {
		t.Fatalf("Validate one request a day = %v, %v; want accepted", got.PerHostRPS, err)
	}
	got, err = TargetRequest{SeedURL: "http://a.com/", Sitemaps: ptr(false), Include: `^http://a\.com/docs/`, Exclude: `\.pdf$`}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.TargetOptions{IncludeRegex: `^http://a\.com/docs/`, ExcludeRegex: `\.pdf$`}, got.TargetOptions); diff != "" {
		t.Fatalf("Validate options (-want +got):\n%s", diff)
	}
}

package web

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/target"
)

func ptr[T any](v T) *T { return &v }

// TestTargetRequestSpec: the API's JSON body becomes the target's spec through the target
// package, with its defaults for what the body leaves out, and a field the target package
// refuses is a 400 naming it (target's own tests check every rule).
func TestTargetRequestSpec(t *testing.T) {
	t.Parallel()
	var req TargetRequest
	body := `{"seed_url":" HTTP://Example.COM:80/docs/#top ","name":"","scope":"prefix","max_depth":0,"per_host_rps":0,
		"recrawl_interval":"24h","sitemaps":false,"include":"^http://example\\.com/docs/","exclude":"\\.pdf$",
		"search_language":" English "}`
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	got, err := target.Request(req).Spec()
	if err != nil {
		t.Fatal(err)
	}
	want := target.Spec{
		Name: "example.com", SeedURL: "http://example.com/docs/", Scope: "prefix", ScopePrefix: "http://example.com/docs/",
		MaxDepth: 0, MaxPages: target.DefaultMaxPages, PerHostRPS: 0, MaxAttempts: target.DefaultMaxAttempts,
		RecrawlInterval: 24 * time.Hour, Sitemaps: false, Include: `^http://example\.com/docs/`, Exclude: `\.pdf$`,
		SearchLanguage: "english",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Spec (-want +got):\n%s", diff)
	}
	for field, req := range map[string]TargetRequest{
		"seed_url":         {SeedURL: "ftp://example.com/"},
		"max_pages":        {SeedURL: "http://a.com/", MaxPages: ptr(0)},
		"per_host_rps":     {SeedURL: "http://a.com/", PerHostRPS: ptr(math.NaN())},
		"recrawl_interval": {SeedURL: "http://a.com/", RecrawlInterval: "often"},
		"exclude":          {SeedURL: "http://a.com/", Exclude: "[z-a]"},
		"search_language":  {SeedURL: "http://a.com/", SearchLanguage: "english!"},
	} {
		_, err := target.Request(req).Spec()
		var fe *target.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("Spec(%+v) = %v, want an error on %q", req, err, field)
		}
	}
}

// Package target is the domain of a crawl target: its spec (seed, scope, filters, limits and
// rate), the defaults of what a request leaves out, the validation of what a person or a
// program asks for, and the compiled scope that decides which links join its frontier.
//
// web turns HTTP into a Request and a Target back into JSON or HTML, store keeps a Spec in the
// targets table, and process admits links through a Scope compiled once per target and spec
// (ScopeCache). None of them holds a target rule of its own (docs/adr/0050-targets-have-a-domain-package.md).
package target

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/politeness"
)

// Defaults of what a Request leaves out.
const (
	DefaultMaxDepth    = 5
	DefaultMaxPages    = 10000
	DefaultPerHostRPS  = 1.0
	DefaultMaxAttempts = 4
	DefaultSitemaps    = true
	// DefaultSearchLanguage is PostgreSQL's 'simple' text-search configuration: words are
	// lower-cased, neither stemmed nor dropped as stop words.
	DefaultSearchLanguage = "simple"
)

// Limits on a spec's fields.
const (
	MaxNameLength   = 200
	MaxDepthLimit   = 1000
	MaxPagesLimit   = 10_000_000
	MaxAttemptsMax  = 100
	MinRecrawlEvery = time.Minute
)

// Spec is what a target is asked to crawl and how: everything of a target but its state and
// progress. A Spec from Validate (or Request.Spec) is valid and normal: its seed is canonical,
// its scope kind lower-case and its prefix canonical (and empty unless the scope is a prefix).
type Spec struct {
	Name string
	// SeedURL is the canonical URL the crawl starts from.
	SeedURL string
	// Scope is a crawlurl.ScopeKind: "host", "domain" or "prefix".
	Scope string
	// ScopePrefix is the canonical URL prefix of a "prefix" scope.
	ScopePrefix string
	MaxDepth    int
	MaxPages    int
	// PerHostRPS is the most requests per second to one host; 0 means unlimited.
	PerHostRPS  float64
	MaxAttempts int
	// RecrawlInterval is how long after it finishes the target is crawled again; 0 means never.
	RecrawlInterval time.Duration
	// Sitemaps turns on sitemap discovery (robots.txt Sitemap lines and /sitemap.xml).
	Sitemaps bool
	// Include and Exclude filter discovered URLs (RE2 syntax, matched against the canonical
	// URL); "" means no filter.
	Include string
	Exclude string
	// SearchLanguage is the PostgreSQL text-search configuration ("simple", "english",
	// "german", …) the target's pages are indexed and searched with. Validate checks its
	// form; the store checks that PostgreSQL has it (docs/adr/0056-ranked-search-per-target-language.md).
	SearchLanguage string
}

// SeedHost is the politeness key of the seed's host (crawlurl.HostKey; for a canonical seed,
// its host and port as written), "" if the seed does not parse. It is the name of a target
// that is given none.
func (s Spec) SeedHost() string {
	u, err := url.Parse(s.SeedURL)
	if err != nil {
		return ""
	}
	return crawlurl.HostKey(u)
}

// FieldError is a spec that cannot be: Field names the request field at fault as the API and
// the form name it ("seed_url", "max_pages"), Msg says what is wrong with it.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Request is what a person or a program asks for: every field but SeedURL is optional, and nil
// or "" means the default. Its fields are the API's (web's TargetRequest converts to it).
type Request struct {
	SeedURL         string
	Name            string
	Scope           string
	ScopePrefix     string
	MaxDepth        *int
	MaxPages        *int
	PerHostRPS      *float64
	MaxAttempts     *int
	RecrawlInterval string // a Go duration, such as "24h"
	Sitemaps        *bool
	Include         string
	Exclude         string
	SearchLanguage  string // "" is DefaultSearchLanguage
}

// Spec applies the defaults to what r leaves out and validates the result (Spec.Validate). A
// RecrawlInterval that is no positive duration is an error on recrawl_interval.
func (r Request) Spec() (Spec, error) {
	s := Spec{
		Name: r.Name, SeedURL: r.SeedURL, Scope: r.Scope, ScopePrefix: r.ScopePrefix,
		MaxDepth: DefaultMaxDepth, MaxPages: DefaultMaxPages, PerHostRPS: DefaultPerHostRPS,
		MaxAttempts: DefaultMaxAttempts, Sitemaps: DefaultSitemaps, Include: r.Include, Exclude: r.Exclude,
		SearchLanguage: r.SearchLanguage,
	}
	if r.MaxDepth != nil {
		s.MaxDepth = *r.MaxDepth
	}
	if r.MaxPages != nil {
		s.MaxPages = *r.MaxPages
	}
	if r.MaxAttempts != nil {
		s.MaxAttempts = *r.MaxAttempts
	}
	if r.PerHostRPS != nil {
		s.PerHostRPS = *r.PerHostRPS
	}
	if r.Sitemaps != nil {
		s.Sitemaps = *r.Sitemaps
	}
	badInterval := false
	if r.RecrawlInterval != "" {
		d, err := time.ParseDuration(r.RecrawlInterval)
		badInterval = err != nil || d <= 0
		s.RecrawlInterval = max(d, 0)
	}
	s, err := s.Validate()
	if err != nil {
		return Spec{}, err
	}
	if badInterval {
		return Spec{}, errRecrawl
	}
	return s, nil
}

// errRecrawl is the error on a recrawl interval that is no duration of at least
// MinRecrawlEvery.
var errRecrawl = &FieldError{"recrawl_interval", "must be a duration of at least 1m, like 24h"}

// Validate checks every field of s and returns s in normal form: the seed canonical (and
// trimmed), the scope kind lower-case ("" is "host"), the prefix canonical (the seed's
// directory when a prefix scope names none, and "" for other scopes), the name trimmed and
// defaulted to the seed's host, the search language trimmed, lower-case and defaulted to
// DefaultSearchLanguage. The first field at fault, in the order of the API's fields, is
// a *FieldError.
func (s Spec) Validate() (Spec, error) {
	seed, err := canonicalSeed(s.SeedURL)
	if err != nil {
		return Spec{}, err
	}
	s.SeedURL = seed
	sc, err := compileScope(seed, s.Scope, strings.TrimSpace(s.ScopePrefix), s.Include, s.Exclude)
	if err != nil {
		return Spec{}, err
	}
	s.Scope, s.ScopePrefix = string(sc.scope.Kind), sc.scope.Prefix
	if s.Name = strings.TrimSpace(s.Name); s.Name == "" {
		s.Name = s.SeedHost()
	}
	switch {
	case len(s.Name) > MaxNameLength:
		return Spec{}, &FieldError{"name", fmt.Sprintf("must be at most %d characters", MaxNameLength)}
	case s.MaxDepth < 0 || s.MaxDepth > MaxDepthLimit:
		return Spec{}, &FieldError{"max_depth", fmt.Sprintf("must be between 0 and %d", MaxDepthLimit)}
	case s.MaxPages < 1 || s.MaxPages > MaxPagesLimit:
		return Spec{}, &FieldError{"max_pages", fmt.Sprintf("must be between 1 and %d", MaxPagesLimit)}
	}
	if err := politeness.CheckRPS(s.PerHostRPS); err != nil {
		return Spec{}, &FieldError{"per_host_rps", err.Error()}
	}
	switch {
	case s.MaxAttempts < 1 || s.MaxAttempts > MaxAttemptsMax:
		return Spec{}, &FieldError{"max_attempts", fmt.Sprintf("must be between 1 and %d", MaxAttemptsMax)}
	case s.RecrawlInterval != 0 && s.RecrawlInterval < MinRecrawlEvery:
		return Spec{}, errRecrawl
	}
	if s.SearchLanguage = strings.ToLower(strings.TrimSpace(s.SearchLanguage)); s.SearchLanguage == "" {
		s.SearchLanguage = DefaultSearchLanguage
	}
	if !validLanguageName(s.SearchLanguage) {
		return Spec{}, ErrSearchLanguage
	}
	return s, nil
}

// ErrSearchLanguage is the error on a search language that is not one of PostgreSQL's
// built-in text-search configurations; the store returns it too, for a well-formed name
// PostgreSQL does not have.
var ErrSearchLanguage = &FieldError{"search_language",
	"must be one of PostgreSQL's text-search configurations, like simple (no stemming), english, french, german or spanish"}

// validLanguageName reports whether name has the form of a built-in configuration's name: 1 to
// 63 lower-case ASCII letters or underscores.
func validLanguageName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

// canonicalSeed checks a seed URL as a person typed it and returns its canonical form.
func canonicalSeed(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", &FieldError{"seed_url", "is required"}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", &FieldError{"seed_url", "is not a valid URL"}
	case u.Scheme != "http" && u.Scheme != "https":
		return "", &FieldError{"seed_url", "must be an http or https URL"}
	case u.Host == "":
		return "", &FieldError{"seed_url", "must include a host"}
	}
	seed, err := crawlurl.Canonicalize(raw)
	if err != nil {
		return "", &FieldError{"seed_url", "is not a valid URL: " + strings.TrimPrefix(err.Error(), "frontier: ")}
	}
	return seed, nil
}

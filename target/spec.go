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

// FieldErrors are every field at fault in a spec, in the order of the API's fields, so that a
// form can show them all at once. As an error it unwraps to its *FieldError values: errors.As with a
// *FieldError finds the first.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the field errors, first to last.
func (es FieldErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// add appends err, a *FieldError or nil.
func (es *FieldErrors) add(err *FieldError) {
	if err != nil {
		*es = append(*es, err)
	}
}

// err is es as an error: nil when empty.
func (es FieldErrors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

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
	var errs FieldErrors
	d, bad := parseRecrawl(r.RecrawlInterval)
	s.RecrawlInterval = d
	s, err := s.Validate()
	if fes, ok := err.(FieldErrors); ok {
		errs = fes
	} else if err != nil {
		return Spec{}, err
	}
	if bad != nil {
		errs.add(bad) // the last field of all: the order stays the API's
	}
	if err := errs.err(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// parseRecrawl reads a recrawl interval as a person or a program writes it: "" is 0 (never), and
// anything that is no positive duration is errRecrawl. A positive one shorter than
// MinRecrawlEvery is returned as it is, for Validate to refuse.
func parseRecrawl(v string) (time.Duration, *FieldError) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errRecrawl
	}
	return d, nil
}

// errRecrawl is the error on a recrawl interval that is no duration of at least
// MinRecrawlEvery.
var errRecrawl = &FieldError{"recrawl_interval", "must be a duration of at least 1m, like 24h"}

// Validate checks every field of s and returns s in normal form: the seed canonical (and
// trimmed), the scope kind lower-case ("" is "host"), the prefix canonical (the seed's
// directory when a prefix scope names none, and "" for other scopes), the name trimmed and
// defaulted to the seed's host, the search language trimmed, lower-case and defaulted to
// DefaultSearchLanguage. The fields at fault are a FieldErrors, in the order of the API's
// fields (errors.As with a *FieldError finds the first).
func (s Spec) Validate() (Spec, error) {
	var errs FieldErrors
	seed, seedErr := canonicalSeed(s.SeedURL)
	errs.add(seedErr)
	kind, kindErr := scopeKind(s.Scope)
	errs.add(kindErr)
	if seedErr == nil && kindErr == nil {
		sc, err := newScope(kind, seed, strings.TrimSpace(s.ScopePrefix))
		errs.add(err)
		s.Scope, s.ScopePrefix = string(sc.Kind), sc.Prefix
	}
	s.SeedURL = seed
	// Each pattern on its own, so that both are reported when both are bad.
	_, err := compileFilter(s.Include, "")
	errs.add(err)
	_, err = compileFilter("", s.Exclude)
	errs.add(err)
	if s.Name = strings.TrimSpace(s.Name); s.Name == "" {
		s.Name = s.SeedHost()
	}
	if len(s.Name) > MaxNameLength {
		errs.add(&FieldError{"name", fmt.Sprintf("must be at most %d characters", MaxNameLength)})
	}
	if s.MaxDepth < 0 || s.MaxDepth > MaxDepthLimit {
		errs.add(&FieldError{"max_depth", fmt.Sprintf("must be between 0 and %d", MaxDepthLimit)})
	}
	if s.MaxPages < 1 || s.MaxPages > MaxPagesLimit {
		errs.add(&FieldError{"max_pages", fmt.Sprintf("must be between 1 and %d", MaxPagesLimit)})
	}
	if err := politeness.CheckRPS(s.PerHostRPS); err != nil {
		errs.add(&FieldError{"per_host_rps", err.Error()})
	}
	if s.MaxAttempts < 1 || s.MaxAttempts > MaxAttemptsMax {
		errs.add(&FieldError{"max_attempts", fmt.Sprintf("must be between 1 and %d", MaxAttemptsMax)})
	}
	if s.RecrawlInterval != 0 && s.RecrawlInterval < MinRecrawlEvery {
		errs.add(errRecrawl)
	}
	if s.SearchLanguage = strings.ToLower(strings.TrimSpace(s.SearchLanguage)); s.SearchLanguage == "" {
		s.SearchLanguage = DefaultSearchLanguage
	}
	if !validLanguageName(s.SearchLanguage) {
		errs.add(ErrSearchLanguage)
	}
	if err := errs.err(); err != nil {
		return Spec{}, err
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
func canonicalSeed(raw string) (string, *FieldError) {
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

// Patch is an edit of a stored target's spec: a nil field is left as it is. The seed URL, the
// scope kind and the scope prefix cannot change (another seed or scope is another crawl, and
// the stored URLs were found under this one): given, they must name what the spec has.
type Patch struct {
	Name        *string
	MaxDepth    *int
	MaxPages    *int
	PerHostRPS  *float64
	MaxAttempts *int
	// RecrawlInterval is a Go duration, such as "24h"; "" means never.
	RecrawlInterval *string
	Sitemaps        *bool
	Include         *string
	Exclude         *string

	SeedURL     *string
	Scope       *string
	ScopePrefix *string
}

// Apply returns s, a valid spec, with p applied and validated (Validate). Every field at fault
// is in the FieldErrors, in the order of the API's fields.
func (p Patch) Apply(s Spec) (Spec, error) {
	var errs FieldErrors
	errs.add(p.fixed(s))
	set(&s.Name, p.Name)
	set(&s.MaxDepth, p.MaxDepth)
	set(&s.MaxPages, p.MaxPages)
	set(&s.PerHostRPS, p.PerHostRPS)
	set(&s.MaxAttempts, p.MaxAttempts)
	set(&s.Sitemaps, p.Sitemaps)
	set(&s.Include, p.Include)
	set(&s.Exclude, p.Exclude)
	var bad *FieldError
	if p.RecrawlInterval != nil {
		s.RecrawlInterval, bad = parseRecrawl(*p.RecrawlInterval)
	}
	s, err := s.Validate()
	if fes, ok := err.(FieldErrors); ok {
		errs = append(errs, fes...)
	} else if err != nil {
		return Spec{}, err
	}
	errs.add(bad)
	if err := errs.err(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// fixed checks that p names s's own seed and scope, if it names them at all.
func (p Patch) fixed(s Spec) *FieldError {
	if p.SeedURL != nil {
		if seed, err := canonicalSeed(*p.SeedURL); err != nil || seed != s.SeedURL {
			return &FieldError{"seed_url", "cannot be changed: add a new target to crawl from another seed"}
		}
	}
	kind, err := scopeKind(s.Scope)
	if p.Scope != nil {
		if k, kerr := scopeKind(*p.Scope); kerr != nil || err != nil || k != kind {
			return &FieldError{"scope", "cannot be changed: add a new target to crawl another scope"}
		}
	}
	if p.ScopePrefix != nil {
		if sc, perr := newScope(kind, s.SeedURL, strings.TrimSpace(*p.ScopePrefix)); perr != nil || err != nil || sc.Prefix != s.ScopePrefix {
			return &FieldError{"scope_prefix", "cannot be changed: add a new target to crawl another prefix"}
		}
	}
	return nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Patch is the edit that sets every field a target may change to what r asks, and to its
// default where r leaves it out, as when the target was added: the edit form sends every field.
// r's seed and scope are not part of it.
func (r Request) Patch() Patch {
	return Patch{
		Name: &r.Name, MaxDepth: orDefault(r.MaxDepth, DefaultMaxDepth), MaxPages: orDefault(r.MaxPages, DefaultMaxPages),
		PerHostRPS: orDefault(r.PerHostRPS, DefaultPerHostRPS), MaxAttempts: orDefault(r.MaxAttempts, DefaultMaxAttempts),
		RecrawlInterval: &r.RecrawlInterval, Sitemaps: orDefault(r.Sitemaps, DefaultSitemaps),
		Include: &r.Include, Exclude: &r.Exclude,
	}
}

func orDefault[T any](v *T, def T) *T {
	if v != nil {
		return v
	}
	return &def
}

package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/politeness"
	"github.com/trawlhq/trawl/store"
)

// Store is what the dashboard needs from the database (*store.Store).
type Store interface {
	CreateTarget(ctx context.Context, nt store.NewTarget) (store.Target, error)
	Target(ctx context.Context, id int64) (store.Target, error)
	Targets(ctx context.Context, limit int) ([]store.Target, error)

	Overview(ctx context.Context) (store.Overview, error)
	Throughput(ctx context.Context, targetID int64, window, bucket time.Duration) ([]store.RatePoint, error)
	TargetList(ctx context.Context, q store.TargetQuery) (store.TargetList, error)
	TargetSummary(ctx context.Context, id int64) (store.TargetSummary, error)
	TargetHosts(ctx context.Context, targetID int64, after string, limit int) (store.HostList, error)
	TargetErrors(ctx context.Context, targetID int64, limit int) ([]store.ErrorGroup, error)
	Pages(ctx context.Context, q store.PageQuery) (store.PageList, error)
	Search(ctx context.Context, q store.SearchQuery) (store.SearchResults, error)
	PageDetail(ctx context.Context, urlID int64) (store.PageDetail, error)
	FetchHistory(ctx context.Context, urlID int64, limit int) ([]store.Fetch, error)
	Retrying(ctx context.Context, f store.URLFilter) (store.URLList, error)
	Failed(ctx context.Context, f store.URLFilter) (store.URLList, error)
	ExportPages(ctx context.Context, targetID int64, fn func(store.ExportRow) error) error

	PauseTarget(ctx context.Context, id int64) (store.Target, error)
	ResumeTarget(ctx context.Context, id int64) (store.Target, error)
	CancelTarget(ctx context.Context, id int64) (store.Target, error)
	DeleteTarget(ctx context.Context, id int64) (store.Target, error)
	RecrawlTarget(ctx context.Context, id int64) (store.Target, error)
}

// apiError is the JSON error body: a message and, for validation errors, the field at fault.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// TargetRequest is the body of POST /api/targets. Every field but seed_url is optional.
type TargetRequest struct {
	SeedURL         string   `json:"seed_url"`
	Name            string   `json:"name"`
	Scope           string   `json:"scope"`
	ScopePrefix     string   `json:"scope_prefix"`
	MaxDepth        *int     `json:"max_depth"`
	MaxPages        *int     `json:"max_pages"`
	PerHostRPS      *float64 `json:"per_host_rps"`
	MaxAttempts     *int     `json:"max_attempts"`
	RecrawlInterval string   `json:"recrawl_interval"`
	// Sitemaps turns sitemap discovery on or off; default on.
	Sitemaps *bool `json:"sitemaps"`
	// Include and Exclude are RE2 regexes matched against canonical discovered URLs.
	Include string `json:"include"`
	Exclude string `json:"exclude"`
}

// Defaults for optional target fields.
const (
	DefaultMaxDepth    = 5
	DefaultMaxPages    = 10000
	DefaultPerHostRPS  = 1.0
	DefaultMaxAttempts = 4
	maxPagesLimit      = 10_000_000
)

// Validate checks the request and turns it into a NewTarget. Errors name the field.
func (r TargetRequest) Validate() (store.NewTarget, error) {
	raw := strings.TrimSpace(r.SeedURL)
	if raw == "" {
		return store.NewTarget{}, &fieldError{"seed_url", "is required"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return store.NewTarget{}, &fieldError{"seed_url", "is not a valid URL"}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return store.NewTarget{}, &fieldError{"seed_url", "must be an http or https URL"}
	}
	if u.Host == "" {
		return store.NewTarget{}, &fieldError{"seed_url", "must include a host"}
	}
	seed, err := crawlurl.Canonicalize(raw)
	if err != nil {
		return store.NewTarget{}, &fieldError{"seed_url", "is not a valid URL: " + strings.TrimPrefix(err.Error(), "frontier: ")}
	}
	cu, _ := url.Parse(seed)
	kind, err := crawlurl.ParseScopeKind(r.Scope)
	if err != nil {
		return store.NewTarget{}, &fieldError{"scope", "must be host, domain or prefix"}
	}
	scope, err := crawlurl.NewScope(kind, seed, strings.TrimSpace(r.ScopePrefix))
	if err != nil {
		return store.NewTarget{}, &fieldError{"scope_prefix", strings.TrimPrefix(err.Error(), "frontier: ")}
	}
	nt := store.NewTarget{
		Name: strings.TrimSpace(r.Name), SeedURL: seed, SeedHost: crawlurl.HostKey(cu),
		Scope: string(kind), ScopePrefix: scope.Prefix,
		MaxDepth: DefaultMaxDepth, MaxPages: DefaultMaxPages, PerHostRPS: DefaultPerHostRPS, MaxAttempts: DefaultMaxAttempts,
		TargetOptions: store.DefaultTargetOptions,
	}
	if r.Sitemaps != nil {
		nt.Sitemaps = *r.Sitemaps
	}
	if _, err := crawlurl.CompileFilter(r.Include, r.Exclude); err != nil {
		var pe *crawlurl.PatternError
		if errors.As(err, &pe) {
			return store.NewTarget{}, &fieldError{pe.Which, "is not a valid regular expression: " + pe.Err.Error()}
		}
		return store.NewTarget{}, &fieldError{"include", err.Error()}
	}
	nt.IncludeRegex, nt.ExcludeRegex = r.Include, r.Exclude
	if kind != crawlurl.ScopePrefix {
		nt.ScopePrefix = ""
	}
	if nt.Name == "" {
		nt.Name = cu.Host
	}
	if len(nt.Name) > 200 {
		return store.NewTarget{}, &fieldError{"name", "must be at most 200 characters"}
	}
	if r.MaxDepth != nil {
		if *r.MaxDepth < 0 || *r.MaxDepth > 1000 {
			return store.NewTarget{}, &fieldError{"max_depth", "must be between 0 and 1000"}
		}
		nt.MaxDepth = *r.MaxDepth
	}
	if r.MaxPages != nil {
		if *r.MaxPages < 1 || *r.MaxPages > maxPagesLimit {
			return store.NewTarget{}, &fieldError{"max_pages", fmt.Sprintf("must be between 1 and %d", maxPagesLimit)}
		}
		nt.MaxPages = *r.MaxPages
	}
	if r.PerHostRPS != nil {
		if err := politeness.CheckRPS(*r.PerHostRPS); err != nil {
			return store.NewTarget{}, &fieldError{"per_host_rps", err.Error()}
		}
		nt.PerHostRPS = *r.PerHostRPS
	}
	if r.MaxAttempts != nil {
		if *r.MaxAttempts < 1 || *r.MaxAttempts > 100 {
			return store.NewTarget{}, &fieldError{"max_attempts", "must be between 1 and 100"}
		}
		nt.MaxAttempts = *r.MaxAttempts
	}
	if r.RecrawlInterval != "" {
		d, err := time.ParseDuration(r.RecrawlInterval)
		if err != nil || d < time.Minute {
			return store.NewTarget{}, &fieldError{"recrawl_interval", "must be a duration of at least 1m, like 24h"}
		}
		nt.RecrawlInterval = d
	}
	return nt, nil
}

// maxBodyBytes bounds an API request body.
const maxBodyBytes = 1 << 20

// decodeJSON reads the request body as exactly one JSON value into v. A body over
// maxBodyBytes answers 413; unknown fields, wrong types, data after the value and strings
// holding NUL characters (which PostgreSQL text cannot store) answer 400 naming the field.
func decodeJSON(c echo.Context, v any) error {
	body := http.MaxBytesReader(c.Response(), c.Request().Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		if err != nil {
			if e := jsonError(err); !isFieldError(e) {
				return e
			}
		}
		return &fieldError{"body", "must hold one JSON value, with nothing after it"}
	}
	if field := nulField(reflect.ValueOf(v), ""); field != "" {
		return &fieldError{field, "must not contain NUL characters"}
	}
	return nil
}

func isFieldError(err error) bool {
	var fe *fieldError
	return errors.As(err, &fe)
}

// jsonError turns a decoding error into the answer: 413 for a body over the limit, else a 400
// naming the field when the decoder knows it.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var me *http.MaxBytesError
	switch {
	case errors.As(err, &me):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", me.Limit))
	case errors.As(err, &te):
		return &fieldError{te.Field, "has the wrong type, want " + te.Type.String()}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &fieldError{strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "is not a known field"}
	default:
		return &fieldError{"body", "is not valid JSON: " + err.Error()}
	}
}

// nulField returns the JSON path of the first string in v that holds a NUL character, or "".
func nulField(v reflect.Value, path string) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return nulField(v.Elem(), path)
	case reflect.String:
		if strings.IndexByte(v.String(), 0) >= 0 {
			if path == "" {
				return "body"
			}
			return path
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if f.Anonymous && f.Tag.Get("json") == "" {
				name = path
			} else if path != "" {
				name = path + "." + name
			}
			if p := nulField(v.Field(i), name); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p := nulField(v.Index(i), path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			k := fmt.Sprint(it.Key().Interface())
			if strings.IndexByte(k, 0) >= 0 {
				return path
			}
			name := k
			if path != "" {
				name = path + "." + k
			}
			if p := nulField(it.Value(), name); p != "" {
				return p
			}
		}
	}
	return ""
}

// TargetJSON is a target as the API shows it.
type TargetJSON struct {
	ID              int64      `json:"id"`
	Name            string     `json:"name"`
	SeedURL         string     `json:"seed_url"`
	Scope           string     `json:"scope"`
	ScopePrefix     string     `json:"scope_prefix,omitempty"`
	MaxDepth        int        `json:"max_depth"`
	MaxPages        int        `json:"max_pages"`
	PerHostRPS      float64    `json:"per_host_rps"`
	MaxAttempts     int        `json:"max_attempts"`
	RecrawlInterval string     `json:"recrawl_interval,omitempty"`
	State           string     `json:"state"`
	Discovered      int64      `json:"discovered"`
	Fetched         int64      `json:"fetched"`
	Failed          int64      `json:"failed"`
	Pending         int64      `json:"pending"`
	CreatedAt       time.Time  `json:"created_at"`
	FinishedAt      *time.Time `json:"finished_at,omitempty"`
	Sitemaps        bool       `json:"sitemaps"`
	Include         string     `json:"include,omitempty"`
	Exclude         string     `json:"exclude,omitempty"`
}

// APIState maps a stored target state to the API's: an active target is "running".
func APIState(t store.Target) string {
	if t.State == store.TargetActive {
		return "running"
	}
	return t.State
}

func toTargetJSON(t store.Target) TargetJSON {
	tj := TargetJSON{
		ID: t.ID, Name: t.Name, SeedURL: t.SeedURL, Scope: t.Scope, ScopePrefix: t.ScopePrefix,
		MaxDepth: t.MaxDepth, MaxPages: t.MaxPages, PerHostRPS: t.PerHostRPS, MaxAttempts: t.MaxAttempts,
		State: APIState(t), Discovered: t.URLsTotal, Fetched: t.URLsDone, Failed: t.URLsFailed,
		Pending: t.Pending(), CreatedAt: t.CreatedAt, FinishedAt: t.FinishedAt,
		Sitemaps: t.Sitemaps, Include: t.IncludeRegex, Exclude: t.ExcludeRegex,
	}
	if t.RecrawlInterval > 0 {
		tj.RecrawlInterval = t.RecrawlInterval.String()
	}
	return tj
}

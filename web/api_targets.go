package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

// TargetRequest is the body of POST /api/targets: a target.Request as JSON. Every field but
// seed_url is optional; target.Request.Spec fills in the defaults and validates.
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
	// SearchLanguage is a PostgreSQL text-search configuration; default "simple".
	SearchLanguage string `json:"search_language"`
}

// apiFieldErrors is the 400 of a target request with fields at fault: the first as
// {"error", "field"}, as every 400 that names a field, and all of them in "errors", so that a
// client can show every error at once.
type apiFieldErrors struct {
	apiError
	Errors []apiError `json:"errors"`
}

// specError answers a 400 naming every field at fault when err holds a target.FieldErrors, and
// returns any other error for the error handler.
func specError(c echo.Context, err error) error {
	var fes target.FieldErrors
	if !errors.As(err, &fes) || len(fes) == 0 {
		return err
	}
	out := apiFieldErrors{Errors: make([]apiError, len(fes))}
	for i, fe := range fes {
		out.Errors[i] = apiError{Error: fe.Error(), Field: fe.Field}
	}
	out.apiError = out.Errors[0]
	return c.JSON(http.StatusBadRequest, out)
}

// TargetPatch is the body of PATCH /api/targets/{id}: a JSON merge patch (RFC 7396) of a
// target, in TargetRequest's field names. A field left out stays as it is; null sets it to its
// default, as a create that leaves it out (name: the seed's host; recrawl_interval: never;
// include and exclude: none). seed_url, scope and scope_prefix cannot change: given, they must
// name the target's own.
type TargetPatch struct {
	Name            *string  `json:"name"`
	MaxDepth        *int     `json:"max_depth"`
	MaxPages        *int     `json:"max_pages"`
	PerHostRPS      *float64 `json:"per_host_rps"`
	MaxAttempts     *int     `json:"max_attempts"`
	RecrawlInterval *string  `json:"recrawl_interval"`
	Sitemaps        *bool    `json:"sitemaps"`
	Include         *string  `json:"include"`
	Exclude         *string  `json:"exclude"`
	SeedURL         *string  `json:"seed_url"`
	Scope           *string  `json:"scope"`
	ScopePrefix     *string  `json:"scope_prefix"`
}

// patchResets sets a field of a target.Patch to its default (from target.Request{}.Patch) for a
// null in a merge patch, by JSON name. The seed and scope have no default: null asks to change
// them, which Patch.Apply refuses.
var patchResets = map[string]func(p *target.Patch, def target.Patch){
	"name":             func(p *target.Patch, d target.Patch) { p.Name = d.Name },
	"max_depth":        func(p *target.Patch, d target.Patch) { p.MaxDepth = d.MaxDepth },
	"max_pages":        func(p *target.Patch, d target.Patch) { p.MaxPages = d.MaxPages },
	"per_host_rps":     func(p *target.Patch, d target.Patch) { p.PerHostRPS = d.PerHostRPS },
	"max_attempts":     func(p *target.Patch, d target.Patch) { p.MaxAttempts = d.MaxAttempts },
	"recrawl_interval": func(p *target.Patch, d target.Patch) { p.RecrawlInterval = d.RecrawlInterval },
	"sitemaps":         func(p *target.Patch, d target.Patch) { p.Sitemaps = d.Sitemaps },
	"include":          func(p *target.Patch, d target.Patch) { p.Include = d.Include },
	"exclude":          func(p *target.Patch, d target.Patch) { p.Exclude = d.Exclude },
	"seed_url":         func(p *target.Patch, _ target.Patch) { p.SeedURL = new("") },
	"scope":            func(p *target.Patch, _ target.Patch) { p.Scope = new("") },
	"scope_prefix":     func(p *target.Patch, _ target.Patch) { p.ScopePrefix = new("") },
}

// patch is p as a target.Patch, with the fields named in nulls (null in the body) at their
// defaults.
func (p TargetPatch) patch(nulls []string) target.Patch {
	tp := target.Patch{Name: p.Name, MaxDepth: p.MaxDepth, MaxPages: p.MaxPages, PerHostRPS: p.PerHostRPS,
		MaxAttempts: p.MaxAttempts, RecrawlInterval: p.RecrawlInterval, Sitemaps: p.Sitemaps,
		Include: p.Include, Exclude: p.Exclude, SeedURL: p.SeedURL, Scope: p.Scope, ScopePrefix: p.ScopePrefix}
	def := target.Request{}.Patch()
	for _, f := range nulls {
		if reset, ok := patchResets[f]; ok {
			reset(&tp, def)
		}
	}
	return tp
}

// decodePatch reads a merge patch: the body as decodeJSON reads it (one JSON value, known
// fields, no NUL characters), and the names of the fields it sets to null.
func decodePatch(c echo.Context) (TargetPatch, []string, error) {
	var p TargetPatch
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxBodyBytes))
	if err != nil {
		return p, nil, jsonError(err)
	}
	c.Request().Body = io.NopCloser(bytes.NewReader(body))
	if err := decodeJSON(c, &p); err != nil {
		return p, nil, err
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return p, nil, nil // null: an empty patch
	}
	var nulls []string
	for k, v := range fields {
		if string(bytes.TrimSpace(v)) == "null" {
			nulls = append(nulls, k)
		}
	}
	return p, nulls, nil
}

// patchTarget edits a target (PATCH /api/targets/{id}) and answers with it: 400 naming every
// field at fault, 404 for an unknown target, 409 for one being deleted. The edit takes effect
// as store.UpdateTarget says: a rate at once, the rest at the next scheduler tick.
func (s *Server) patchTarget(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	p, nulls, err := decodePatch(c)
	if err != nil {
		return err
	}
	t, err := s.Store.UpdateTarget(c.Request().Context(), id, p.patch(nulls).Apply)
	if err != nil {
		return specError(c, actionError("edit", err))
	}
	s.Log.Info("target action", "target", id, "action", "edit", "via", "api")
	return c.JSON(http.StatusOK, toTargetJSON(t))
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
	SearchLanguage  string     `json:"search_language"`
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
		Sitemaps: t.Sitemaps, Include: t.Include, Exclude: t.Exclude, SearchLanguage: t.SearchLanguage,
	}
	if t.RecrawlInterval > 0 {
		tj.RecrawlInterval = t.RecrawlInterval.String()
	}
	return tj
}

// TargetSummaryJSON is a target with its live figures.
type TargetSummaryJSON struct {
	TargetJSON
	Dispatched   int64   `json:"dispatched"`
	Retrying     int64   `json:"retrying"`
	Cancelled    int64   `json:"cancelled"`
	Progress     float64 `json:"progress"`
	PagesPerSec  float64 `json:"pages_per_sec"`
	ErrorsPerSec float64 `json:"errors_per_sec"`
}

func toSummaryJSON(t store.TargetSummary) TargetSummaryJSON {
	return TargetSummaryJSON{TargetJSON: toTargetJSON(t.Target), Dispatched: t.Dispatched, Retrying: t.Retrying,
		Cancelled: t.Cancelled, Progress: t.Progress(), PagesPerSec: t.PagesPerSec, ErrorsPerSec: t.ErrorsPerSec}
}

func (s *Server) apiTargetAction(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	action := c.Param("action")
	if action == "delete" {
		return echo.NewHTTPError(http.StatusMethodNotAllowed, "use DELETE /api/targets/:id")
	}
	if _, err := s.doTargetAction(c.Request().Context(), id, action); err != nil {
		return actionError(action, err)
	}
	s.Log.Info("target action", "target", id, "action", action, "via", "api")
	t, err := s.Store.Target(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTargetJSON(t))
}

func (s *Server) apiDeleteTarget(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	t, err := s.Store.DeleteTarget(c.Request().Context(), id)
	if err != nil {
		return err
	}
	s.Log.Info("target action", "target", id, "action", "delete", "via", "api")
	// Accepted: the target is "deleting" until the processors have removed its rows, then gone
	// (404).
	return c.JSON(http.StatusAccepted, toTargetJSON(t))
}

func (s *Server) apiHosts(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	limit, err := limitParam(c, 100)
	if err != nil {
		return err
	}
	hl, err := s.Store.TargetHosts(c.Request().Context(), id, c.QueryParam("after"), limit)
	if err != nil {
		return invalidQuery(err, "after")
	}
	return c.JSON(http.StatusOK, toHostListJSON(hl))
}

// idList answers with what get lists for the path's id, at most the limit query parameter
// (def when absent), as {key: list}.
func idList[T any](c echo.Context, def int, key string, get func(ctx context.Context, id int64, limit int) ([]T, error)) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	limit, err := limitParam(c, def)
	if err != nil {
		return err
	}
	l, err := get(c.Request().Context(), id, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{key: l})
}

func (s *Server) apiErrors(c echo.Context) error {
	return idList(c, 50, "errors", func(ctx context.Context, id int64, limit int) ([]ErrorGroupJSON, error) {
		groups, err := s.Store.TargetErrors(ctx, id, limit)
		return mapJSON(groups, toErrorGroupJSON), err
	})
}

func (s *Server) apiPages(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	q := s.pageQuery(c, id)
	if c.QueryParam("desc") == "true" {
		q.Desc = true
	}
	if q.Limit, err = limitParam(c, 50); err != nil {
		return err
	}
	pl, err := s.Store.Pages(c.Request().Context(), q)
	if err != nil {
		return invalidQuery(err, "query")
	}
	return c.JSON(http.StatusOK, toPageListJSON(pl))
}

// export streams rows as they come from the database cursor, flushing every 256 rows.
func (s *Server) export(c echo.Context, contentType, ext string, withText bool, header func(w *bufio.Writer) error, write func(w *bufio.Writer, r store.ExportRow) error) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := s.Store.Target(ctx, id); err != nil {
		return err
	}
	resp := c.Response()
	resp.Header().Set("Content-Type", contentType)
	resp.Header().Set("Content-Disposition", `attachment; filename="target-`+i64(id)+`.`+ext+`"`)
	resp.Header().Set("Cache-Control", "no-store")
	extendDeadlines(c)
	resp.WriteHeader(http.StatusOK)
	w := bufio.NewWriterSize(resp, 64*1024)
	if header != nil {
		if err := header(w); err != nil {
			return nil
		}
	}
	n := 0
	err = s.Store.ExportPages(ctx, id, withText, func(r store.ExportRow) error {
		if err := write(w, r); err != nil {
			return err
		}
		n++
		if n%256 == 0 {
			extendDeadlines(c)
			if err := w.Flush(); err != nil {
				return err
			}
			resp.Flush()
		}
		return nil
	})
	if err != nil {
		// Headers are gone: the truncated body is the only signal; log it.
		s.Log.Warn("export interrupted", "target", id, "rows", n, "err", err)
		return nil
	}
	_ = w.Flush()
	return nil
}

func (s *Server) apiExportJSONL(c echo.Context) error {
	return s.export(c, "application/x-ndjson", "jsonl", true, nil, func(w *bufio.Writer, r store.ExportRow) error {
		enc := json.NewEncoder(w)
		return enc.Encode(toExportRowJSON(r))
	})
}

// csvColumn is one column of the CSV export: its name and how a row's value is written.
type csvColumn struct {
	name  string
	value func(r *store.ExportRow) string
}

// csvColumns are the CSV export's columns, in the order of ExportRowJSON. Crawled text is
// defused (csvSafe).
var csvColumns = []csvColumn{
	{"url_id", func(r *store.ExportRow) string { return i64(r.URLID) }},
	{"url", func(r *store.ExportRow) string { return csvSafe(r.URL) }},
	{"final_url", func(r *store.ExportRow) string { return csvSafe(r.FinalURL) }},
	{"depth", func(r *store.ExportRow) string { return itoa(r.Depth) }},
	{"status", func(r *store.ExportRow) string { return itoa(r.Status) }},
	{"content_type", func(r *store.ExportRow) string { return csvSafe(r.ContentType) }},
	{"title", func(r *store.ExportRow) string { return csvSafe(r.Title) }},
	{"size", func(r *store.ExportRow) string { return itoa(r.Size) }},
	{"truncated", func(r *store.ExportRow) string { return strconv.FormatBool(r.Truncated) }},
	{"duration_ms", func(r *store.ExportRow) string { return itoa(r.DurationMS) }},
	{"link_count", func(r *store.ExportRow) string { return itoa(r.LinkCount) }},
	{"content_hash", func(r *store.ExportRow) string { return r.ContentHash }},
	{"etag", func(r *store.ExportRow) string { return csvSafe(r.ETag) }},
	{"last_modified", func(r *store.ExportRow) string { return httpDate(r.LastModified) }},
	{"fetched_at", func(r *store.ExportRow) string { return r.FetchedAt.UTC().Format(time.RFC3339Nano) }},
	{"text", func(r *store.ExportRow) string { return csvSafe(r.Text) }},
}

// CSVColumns are the names of every column the CSV export can write, in their default order.
// By default it writes all but CSVTextColumn: a page's text can be longer than a spreadsheet's
// cell (Excel stops at 32,767 characters, Python's csv module at 131,072).
var CSVColumns = func() []string {
	names := make([]string, len(csvColumns))
	for i, c := range csvColumns {
		names[i] = c.name
	}
	return names
}()

// CSVTextColumn is the page text's column, exported only when columns= names it.
const CSVTextColumn = "text"

// csvDefault are the columns exported without columns=: all but the text.
var csvDefault = slices.DeleteFunc(slices.Clone(csvColumns), func(c csvColumn) bool { return c.name == CSVTextColumn })

// exportColumns reads the columns= parameter: comma-separated names from CSVColumns, in the
// order given, each once. Without it, every column but the text. Unknown names are a 400 that
// lists them.
func exportColumns(c echo.Context) ([]csvColumn, error) {
	param := strings.TrimSpace(c.QueryParam("columns"))
	if param == "" {
		return csvDefault, nil
	}
	var out []csvColumn
	var unknown []string
	seen := map[string]bool{}
	for name := range strings.SplitSeq(param, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		i := slices.IndexFunc(csvColumns, func(c csvColumn) bool { return c.name == name })
		switch {
		case name == "" || seen[name]:
			continue
		case i < 0:
			unknown = append(unknown, strconv.Quote(name))
		default:
			out = append(out, csvColumns[i])
		}
		seen[name] = true
	}
	if len(unknown) > 0 {
		return nil, &fieldError{"columns", "unknown " + plural(int64(len(unknown)), "column ", "columns ") +
			strings.Join(unknown, ", ") + " (known: " + strings.Join(CSVColumns, ", ") + ")"}
	}
	if len(out) == 0 {
		return nil, &fieldError{"columns", "name at least one column (known: " + strings.Join(CSVColumns, ", ") + ")"}
	}
	return out, nil
}

func (s *Server) apiExportCSV(c echo.Context) error {
	cols, err := exportColumns(c)
	if err != nil {
		return err
	}
	withText := slices.ContainsFunc(cols, func(c csvColumn) bool { return c.name == CSVTextColumn })
	var cw *csv.Writer
	rec := make([]string, len(cols))
	return s.export(c, "text/csv; charset=utf-8", "csv", withText, func(w *bufio.Writer) error {
		cw = csv.NewWriter(w)
		for i, col := range cols {
			rec[i] = col.name
		}
		return cw.Write(rec)
	}, func(_ *bufio.Writer, r store.ExportRow) error {
		for i, col := range cols {
			rec[i] = col.value(&r)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	})
}

// csvSafe defuses spreadsheet formula injection: crawled text starting with = + - @ (or a tab
// or CR) is prefixed with a quote so spreadsheet programs show it as text.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func (s *Server) createTarget(c echo.Context) error {
	var req TargetRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	spec, err := target.Request(req).Spec()
	if err != nil {
		return specError(c, err)
	}
	t, err := s.Store.CreateTarget(c.Request().Context(), spec)
	if err != nil {
		return err
	}
	s.Log.Info("target created", "target", t.ID, "seed", t.SeedURL)
	c.Response().Header().Set("Location", "/api/targets/"+strconv.FormatInt(t.ID, 10))
	return c.JSON(http.StatusCreated, toTargetJSON(t))
}

func (s *Server) listTargets(c echo.Context) error {
	ts, err := s.Store.Targets(c.Request().Context(), 1000)
	if err != nil {
		return err
	}
	out := make([]TargetJSON, len(ts))
	for i, t := range ts {
		out[i] = toTargetJSON(t)
	}
	return c.JSON(http.StatusOK, map[string]any{"targets": out})
}

func (s *Server) getTarget(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return &fieldError{"id", "must be a positive integer"}
	}
	t, err := s.Store.TargetSummary(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toSummaryJSON(t))
}

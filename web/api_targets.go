package web

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
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
}

// targetSpec validates a request as the target package does; a field at fault is a 400 naming
// it, for the API and the form alike.
func targetSpec(r target.Request) (target.Spec, error) {
	spec, err := r.Spec()
	var fe *target.FieldError
	if errors.As(err, &fe) {
		return target.Spec{}, &fieldError{fe.Field, fe.Msg}
	}
	return spec, err
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
		Sitemaps: t.Sitemaps, Include: t.Include, Exclude: t.Exclude,
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
func (s *Server) export(c echo.Context, contentType, ext string, header func(w *bufio.Writer) error, write func(w *bufio.Writer, r store.ExportRow) error) error {
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
	err = s.Store.ExportPages(ctx, id, func(r store.ExportRow) error {
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
	return s.export(c, "application/x-ndjson", "jsonl", nil, func(w *bufio.Writer, r store.ExportRow) error {
		enc := json.NewEncoder(w)
		return enc.Encode(toExportRowJSON(r))
	})
}

// CSVColumns are the export's columns, in order.
var CSVColumns = []string{"url_id", "url", "final_url", "depth", "status", "content_type", "title", "size",
	"truncated", "duration_ms", "link_count", "content_hash", "etag", "last_modified", "fetched_at", "text"}

func (s *Server) apiExportCSV(c echo.Context) error {
	var cw *csv.Writer
	return s.export(c, "text/csv; charset=utf-8", "csv", func(w *bufio.Writer) error {
		cw = csv.NewWriter(w)
		return cw.Write(CSVColumns)
	}, func(_ *bufio.Writer, r store.ExportRow) error {
		rec := []string{i64(r.URLID), csvSafe(r.URL), csvSafe(r.FinalURL), itoa(r.Depth), itoa(r.Status), csvSafe(r.ContentType),
			csvSafe(r.Title), itoa(r.Size), strconv.FormatBool(r.Truncated), itoa(r.DurationMS), itoa(r.LinkCount),
			r.ContentHash, csvSafe(r.ETag), httpDate(r.LastModified), r.FetchedAt.UTC().Format(time.RFC3339Nano), csvSafe(r.Text)}
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
	spec, err := targetSpec(target.Request(req))
	if err != nil {
		return err
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

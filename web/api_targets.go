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

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
)

func (s *Server) apiRoutes(api *echo.Group) {
	api.GET("/overview", s.apiOverview)
	api.GET("/queues", s.apiQueues)
	api.GET("/throughput", s.apiThroughput)
	api.POST("/targets/:id/:action", s.apiTargetAction)
	api.DELETE("/targets/:id", s.apiDeleteTarget)
	api.GET("/targets/:id/hosts", s.apiHosts)
	api.GET("/targets/:id/errors", s.apiErrors)
	api.GET("/targets/:id/pages", s.apiPages)
	api.GET("/targets/:id/export.jsonl", s.apiExportJSONL)
	api.GET("/targets/:id/export.csv", s.apiExportCSV)
	api.GET("/search", s.apiSearch)
	api.GET("/pages/:id", s.apiPage)
	api.GET("/pages/:id/history", s.apiHistory)
	api.POST("/pages/:id/recrawl", s.apiRecrawl)
	api.GET("/retries", s.apiRetrying)
	api.GET("/failed", s.apiFailed)
	api.GET("/dead-letters", s.apiDeadLetters)
	api.POST("/dead-letters/requeue", s.apiRequeue)
	api.POST("/dead-letters/requeue-all", s.apiRequeueAll)
	api.POST("/dead-letters/purge", s.apiPurge)
	api.GET("/workers", s.apiWorkers)
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

func invalidQuery(err error, field string) error {
	if errors.Is(err, store.ErrInvalidQuery) {
		return &fieldError{field, strings.TrimPrefix(err.Error(), "store: ")}
	}
	return err
}

func (s *Server) apiOverview(c echo.Context) error {
	ctx := c.Request().Context()
	ov, err := s.Store.Overview(ctx)
	if err != nil {
		return err
	}
	active := make([]TargetSummaryJSON, len(ov.Active))
	for i, t := range ov.Active {
		active[i] = toSummaryJSON(t)
	}
	out := map[string]any{
		"queued": ov.Queued, "dispatched": ov.Dispatched, "retrying": ov.Retrying, "failed": ov.Failed,
		"done": ov.Done, "discovered": ov.Discovered, "search_backlog": ov.SearchBacklog, "targets": ov.Targets, "active": active,
		"workers": len(s.workerList()),
	}
	if qs, err := s.queueStats(ctx); err != nil {
		out["queues_error"] = "message broker unavailable"
	} else {
		out["queues"] = qs
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiQueues(c echo.Context) error {
	qs, err := s.queueStats(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"queues": qs})
}

func durationParam(c echo.Context, name string, def, lo, hi time.Duration) (time.Duration, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		return 0, &fieldError{name, "must be a duration between " + lo.String() + " and " + hi.String()}
	}
	return d, nil
}

func (s *Server) apiThroughput(c echo.Context) error {
	target, err := queryID(c, "target")
	if err != nil {
		return err
	}
	window, err := durationParam(c, "window", chartWindow, time.Minute, 24*time.Hour)
	if err != nil {
		return err
	}
	bucket, err := durationParam(c, "bucket", chartBucket, time.Second, time.Hour)
	if err != nil {
		return err
	}
	if window/bucket > 2000 {
		return &fieldError{"bucket", "gives too many points: at most 2000 per window"}
	}
	pts, err := s.Store.Throughput(c.Request().Context(), target, window, bucket)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"bucket_seconds": bucket.Seconds(), "points": pts})
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

func limitParam(c echo.Context, def int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, &fieldError{"limit", "must be between 1 and 500"}
	}
	return n, nil
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
	return c.JSON(http.StatusOK, hl)
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
	return idList(c, 50, "errors", s.Store.TargetErrors)
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
	return c.JSON(http.StatusOK, pl)
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
		return enc.Encode(r)
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
			r.ContentHash, csvSafe(r.ETag), csvSafe(r.LastModified), r.FetchedAt.UTC().Format(time.RFC3339Nano), csvSafe(r.Text)}
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

func (s *Server) apiSearch(c echo.Context) error {
	q := strings.TrimSpace(c.QueryParam("q"))
	if q == "" {
		return &fieldError{"q", "is required"}
	}
	target, err := queryID(c, "target")
	if err != nil {
		return err
	}
	limit, err := limitParam(c, 20)
	if err != nil {
		return err
	}
	res, err := s.Store.Search(c.Request().Context(), store.SearchQuery{Query: q, TargetID: target, After: c.QueryParam("after"), Limit: min(limit, 100)})
	if err != nil {
		return invalidQuery(err, "q")
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) apiPage(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	p, err := s.Store.PageDetail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) apiHistory(c echo.Context) error {
	return idList(c, 50, "history", s.Store.FetchHistory)
}

// RecrawlRequestJSON is the body of POST /api/pages/:id/recrawl. RequestID is optional; send
// the same one again to retry without causing a second fetch.
type RecrawlRequestJSON struct {
	RequestID string `json:"request_id"`
}

func (s *Server) apiRecrawl(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req RecrawlRequestJSON
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	if req.RequestID == "" {
		req.RequestID = pipeline.NewID()
	} else if !validRequestID(req.RequestID) {
		return &fieldError{"request_id", "must be 8 to 64 letters, digits, - or _"}
	}
	reply, msg := s.doRecrawl(c.Request().Context(), req.RequestID, id)
	if msg != "" {
		status := http.StatusServiceUnavailable
		switch {
		case msg == msgTimeout(s.RecrawlTimeout):
			status = http.StatusGatewayTimeout
		case msg == msgGone:
			status = http.StatusNotFound
		case reply.Worker != "" || strings.HasPrefix(msg, "No crawler fetched"):
			status = http.StatusConflict
		}
		return c.JSON(status, map[string]any{"error": msg, "request_id": req.RequestID, "reply": reply})
	}
	return c.JSON(http.StatusOK, reply)
}

func (s *Server) apiURLFilter(c echo.Context) (store.URLFilter, error) {
	f, err := s.urlFilter(c)
	if err != nil {
		return f, err
	}
	f.After = c.QueryParam("after")
	f.Limit, err = limitParam(c, 50)
	return f, err
}

// apiURLList answers with the page of URLs list returns for the request's filter.
func (s *Server) apiURLList(c echo.Context, list func(ctx context.Context, f store.URLFilter) (store.URLList, error)) error {
	f, err := s.apiURLFilter(c)
	if err != nil {
		return err
	}
	l, err := list(c.Request().Context(), f)
	if err != nil {
		return invalidQuery(err, "after")
	}
	return c.JSON(http.StatusOK, l)
}

func (s *Server) apiRetrying(c echo.Context) error { return s.apiURLList(c, s.Store.Retrying) }

func (s *Server) apiFailed(c echo.Context) error { return s.apiURLList(c, s.Store.Failed) }

// DeadLetterFilterJSON selects dead letters in the API's bodies and queries.
type DeadLetterFilterJSON struct {
	TargetID   int64  `json:"target_id"`
	Host       string `json:"host"`
	ErrorClass string `json:"error_class"`
	Reason     string `json:"reason"`
}

func (f DeadLetterFilterJSON) filter() store.DeadLetterFilter {
	return store.DeadLetterFilter{TargetID: f.TargetID, Host: f.Host, ErrorClass: f.ErrorClass, Reason: f.Reason}
}

func (s *Server) apiDeadLetters(c echo.Context) error {
	dl, err := s.deadLetters()
	if err != nil {
		return err
	}
	target, err := queryID(c, "target")
	if err != nil {
		return err
	}
	after, err := queryID(c, "after")
	if err != nil {
		return err
	}
	limit, err := limitParam(c, 50)
	if err != nil {
		return err
	}
	f := store.DeadLetterFilter{TargetID: target, Host: c.QueryParam("host"), ErrorClass: c.QueryParam("class"),
		Reason: c.QueryParam("reason"), AfterID: after, Limit: limit}
	rows, err := dl.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := map[string]any{"dead_letters": rows}
	if len(rows) == limit {
		out["next_after"] = rows[len(rows)-1].ID
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiRequeue(c echo.Context) error {
	var body struct {
		IDs []int64 `json:"ids"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if len(body.IDs) == 0 || len(body.IDs) > 10000 {
		return &fieldError{"ids", "must list 1 to 10000 dead letter ids"}
	}
	dl, err := s.deadLetters()
	if err != nil {
		return err
	}
	n, err := dl.Requeue(c.Request().Context(), body.IDs)
	return requeuedJSON(c, n, err)
}

// requeuedJSON answers a requeue that moved n dead letters. An error after some were moved is
// reported beside the count; one before any was moved is the answer.
func requeuedJSON(c echo.Context, n int, err error) error {
	if err != nil && n == 0 {
		return deadLetterError(err)
	}
	out := map[string]any{"requeued": n}
	if err != nil {
		out["error"] = err.Error()
	}
	return c.JSON(http.StatusOK, out)
}

// filterBody returns the dead-letter service and the filter of a bulk action's optional JSON
// body. A bad body is reported before an unavailable broker.
func (s *Server) filterBody(c echo.Context) (DeadLetters, store.DeadLetterFilter, error) {
	var f DeadLetterFilterJSON
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &f); err != nil {
			return nil, store.DeadLetterFilter{}, err
		}
	}
	dl, err := s.deadLetters()
	if err != nil {
		return nil, store.DeadLetterFilter{}, err
	}
	return dl, f.filter(), nil
}

func (s *Server) apiRequeueAll(c echo.Context) error {
	dl, f, err := s.filterBody(c)
	if err != nil {
		return err
	}
	counts, err := dl.RequeueAll(c.Request().Context(), f)
	extendDeadlines(c) // it may have outlasted the server's write timeout: answer all the same
	if err != nil && counts.Requeued == 0 && counts.Skipped == 0 && !errors.Is(err, deadletter.ErrNoOrigin) {
		return deadLetterError(err) // nothing moved: the broker or the database is down
	}
	out := map[string]any{"requeued": counts.Requeued, "failed": counts.Failed, "skipped": counts.Skipped}
	if err != nil {
		out["error"] = err.Error()
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiPurge(c echo.Context) error {
	dl, f, err := s.filterBody(c)
	if err != nil {
		return err
	}
	n, err := dl.Purge(c.Request().Context(), f)
	if err != nil {
		return deadLetterError(err)
	}
	return c.JSON(http.StatusOK, map[string]int{"purged": n})
}

func (s *Server) apiWorkers(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"workers": s.workerList()})
}

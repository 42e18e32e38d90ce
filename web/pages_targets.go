package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/recrawl"
	"github.com/trawlhq/trawl/store"
)

// Chart geometry: the overview shows the last 15 minutes in 15-second buckets.
const (
	chartWindow = 15 * time.Minute
	chartBucket = 15 * time.Second
)

func (s *Server) routes(e *echo.Echo) {
	e.GET("/", s.overview)
	e.GET("/events/overview", s.overviewEvents)
	e.GET("/targets", s.targetsPage)
	e.POST("/targets", s.addTarget)
	e.GET("/targets/:id", s.targetPage)
	e.POST("/targets/:id/:action", s.targetAction)
	e.GET("/targets/:id/delete", s.deleteConfirm)
	e.GET("/targets/:id/progress", s.targetProgress)
	e.GET("/search", s.searchPage)
	e.GET("/pages/:id", s.pagePage)
	e.POST("/pages/:id/recrawl", s.recrawlPage)
	e.GET("/retries", s.retriesPage)
	e.POST("/dead-letters/:id/requeue", s.requeueOne)
	e.POST("/dead-letters/requeue-all", s.requeueAll)
	e.GET("/dead-letters/purge", s.purgeConfirm)
	e.POST("/dead-letters/purge", s.purge)
	e.GET("/workers", s.workersPage)
	e.GET("/workers/list", s.workersList)
}

func pathID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, &fieldError{"id", "must be a positive integer"}
	}
	return id, nil
}

func queryID(c echo.Context, name string) (int64, error) {
	v := strings.TrimSpace(c.QueryParam(name))
	if v == "" {
		v = strings.TrimSpace(c.FormValue(name))
	}
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		return 0, &fieldError{name, "must be a positive integer"}
	}
	return id, nil
}

// describe turns a dependency failure into a sentence for the page.
func describe(err error, what string) string {
	switch {
	case errors.Is(err, errBrokerUnavailable):
		return "The message broker is unavailable, so " + what + " cannot be shown."
	case store.Transient(err) || errors.Is(err, context.DeadlineExceeded):
		return "The database is unreachable, so " + what + " cannot be shown."
	default:
		return "Could not load " + what + ": " + err.Error()
	}
}

// overviewData gathers the overview; a failing part is described, not fatal.
func (s *Server) overviewData(ctx context.Context) overviewData {
	var d overviewData
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if ov, err := s.Store.Overview(ctx); err != nil {
		d.FrontierErr = describe(err, "the frontier")
		s.Log.Warn("overview: frontier", "err", err)
	} else {
		d.Frontier = ov
	}
	if pts, err := s.Store.Throughput(ctx, 0, chartWindow, chartBucket); err != nil {
		d.ChartErr = describe(err, "the throughput chart")
	} else {
		d.Chart = buildChart(pts, chartBucket, s.now())
	}
	if qs, err := s.queueStats(ctx); err != nil {
		d.QueuesErr = describe(err, "queue depths")
	} else {
		d.Queues = qs
	}
	if s.Workers != nil {
		d.Workers = len(s.Workers.List())
	}
	d.Health = s.health(ctx)
	return d
}

func (s *Server) queueStats(ctx context.Context) ([]pipeline.QueueStat, error) {
	if s.Queues == nil || (s.BrokerUp != nil && !s.BrokerUp()) {
		return nil, errBrokerUnavailable
	}
	qs, err := s.Queues.QueueStats(ctx)
	if err != nil {
		return nil, errors.Join(errBrokerUnavailable, err)
	}
	return qs, nil
}

func (s *Server) overview(c echo.Context) error {
	return render(c, http.StatusOK, overviewPage(s.chrome(c, "Overview", "overview"), s.overviewData(c.Request().Context())))
}

func (s *Server) targetsPage(c echo.Context) error {
	state := c.QueryParam("state")
	list, err := s.Store.TargetList(c.Request().Context(), store.TargetQuery{State: state, After: c.QueryParam("after"), Limit: 50})
	if err != nil {
		field := "after"
		if strings.Contains(err.Error(), "target state") {
			field = "state"
		}
		return invalidQuery(err, field)
	}
	form := targetForm{Values: map[string]string{"scope": "host"}}
	return render(c, http.StatusOK, targetsPage(s.chrome(c, "Targets", "targets"), list, form, state))
}

var formFields = []string{"seed_url", "name", "scope", "scope_prefix", "max_depth", "max_pages", "per_host_rps",
	"recrawl_interval", "max_attempts", "include", "exclude"}

// parseTargetForm reads the add-target form. Number fields that do not parse are reported
// (all at once); the rest is checked by TargetRequest.Validate.
func parseTargetForm(c echo.Context) (TargetRequest, targetForm) {
	f := targetForm{Values: map[string]string{}, Errors: map[string]string{}}
	for _, k := range formFields {
		f.Values[k] = c.FormValue(k)
	}
	req := TargetRequest{SeedURL: f.Values["seed_url"], Name: f.Values["name"], Scope: f.Values["scope"],
		ScopePrefix: f.Values["scope_prefix"], RecrawlInterval: strings.TrimSpace(f.Values["recrawl_interval"]),
		Include: f.Values["include"], Exclude: f.Values["exclude"]}
	// The form sends a hidden "off" then, when the box is checked, "on": the last value wins.
	// A form without the field keeps the default (on).
	f.Values["sitemaps"] = "on"
	if params, err := c.FormParams(); err == nil {
		if vs := params["sitemaps"]; len(vs) > 0 {
			f.Values["sitemaps"] = vs[len(vs)-1]
			switch strings.ToLower(strings.TrimSpace(vs[len(vs)-1])) {
			case "on", "1", "true":
				req.Sitemaps = new(true)
			case "off", "0", "false":
				req.Sitemaps = new(false)
				f.Values["sitemaps"] = "off"
			default:
				f.Errors["sitemaps"] = "must be on or off"
			}
		}
	}
	intField := func(name string) *int {
		v := strings.TrimSpace(f.Values[name])
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			f.Errors[name] = "must be a whole number"
			return nil
		}
		return &n
	}
	req.MaxDepth = intField("max_depth")
	req.MaxPages = intField("max_pages")
	req.MaxAttempts = intField("max_attempts")
	if v := strings.TrimSpace(f.Values["per_host_rps"]); v != "" {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			f.Errors["per_host_rps"] = "must be a number"
		} else {
			req.PerHostRPS = &x
		}
	}
	return req, f
}

func (s *Server) addTarget(c echo.Context) error {
	req, form := parseTargetForm(c)
	var nt store.NewTarget
	if len(form.Errors) == 0 {
		var err error
		nt, err = req.Validate()
		var fe *fieldError
		if errors.As(err, &fe) {
			form.Errors[fe.field] = fe.msg
		} else if err != nil {
			return err
		}
	}
	if len(form.Errors) > 0 {
		if isHTMX(c) {
			// 200 so htmx swaps the form with its errors in place.
			return render(c, http.StatusOK, targetFormView(form, csrfToken(c)))
		}
		list, err := s.Store.TargetList(c.Request().Context(), store.TargetQuery{Limit: 50})
		if err != nil {
			form.Errors["form"] = describe(err, "the target list")
		}
		return render(c, http.StatusUnprocessableEntity, targetsPage(s.chrome(c, "Targets", "targets"), list, form, ""))
	}
	t, err := s.Store.CreateTarget(c.Request().Context(), nt)
	if err != nil {
		if isHTMX(c) {
			form.Errors["form"] = describe(err, "the new target")
			return render(c, http.StatusOK, targetFormView(form, csrfToken(c)))
		}
		return err
	}
	s.Log.Info("target created", "target", t.ID, "seed", t.SeedURL)
	dest := "/targets/" + i64(t.ID)
	if isHTMX(c) {
		c.Response().Header().Set("HX-Redirect", dest)
		return c.NoContent(http.StatusOK)
	}
	return c.Redirect(http.StatusSeeOther, dest)
}

func (s *Server) pageQuery(c echo.Context, id int64) store.PageQuery {
	return store.PageQuery{TargetID: id, Status: strings.TrimSpace(c.QueryParam("status")),
		ContentType: strings.TrimSpace(c.QueryParam("ctype")), Sort: c.QueryParam("sort"),
		Desc: c.QueryParam("desc") == "1", After: c.QueryParam("after"), Limit: 50}
}

func (s *Server) targetPage(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d := targetDetail{Q: s.pageQuery(c, id), Now: timeRef{s.now()}, Msg: flash(c.QueryParam("msg"))}
	if d.T, err = s.Store.TargetSummary(ctx, id); err != nil {
		return err
	}
	if d.Hosts, err = s.Store.TargetHosts(ctx, id, c.QueryParam("hosts_after"), 50); err != nil {
		return err
	}
	if d.Errors, err = s.Store.TargetErrors(ctx, id, 20); err != nil {
		return err
	}
	if d.Pages, err = s.Store.Pages(ctx, d.Q); err != nil {
		if errors.Is(err, store.ErrInvalidQuery) {
			return &fieldError{"query", strings.TrimPrefix(err.Error(), "store: ")}
		}
		return err
	}
	return render(c, http.StatusOK, targetPage(s.chrome(c, d.T.Name, "targets"), d))
}

func (s *Server) targetProgress(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	t, err := s.Store.TargetSummary(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, targetProgress(t))
}

var flashes = map[string]string{
	"pause":   "Paused: nothing more of this target is dispatched; fetches in flight finish.",
	"resume":  "Resumed.",
	"cancel":  "Cancelled: queued URLs will not be fetched.",
	"recrawl": "Re-crawl queued: the target's URLs will be fetched again.",
}

func flash(key string) string { return flashes[key] }

// doTargetAction runs a state change; shared by the UI and the API.
func (s *Server) doTargetAction(ctx context.Context, id int64, action string) (store.Target, error) {
	switch action {
	case "pause":
		return s.Store.PauseTarget(ctx, id)
	case "resume":
		return s.Store.ResumeTarget(ctx, id)
	case "cancel":
		return s.Store.CancelTarget(ctx, id)
	case "recrawl":
		return s.Store.RecrawlTarget(ctx, id)
	case "delete":
		return s.Store.DeleteTarget(ctx, id)
	}
	return store.Target{}, echo.NewHTTPError(http.StatusNotFound, "unknown action "+strconvQuote(action))
}

func strconvQuote(s string) string { return strconv.Quote(s) }

// actionError turns an action's refusal into 409 Conflict with a message that says why; other
// errors go to the error handler.
func actionError(action string, err error) error {
	switch {
	case errors.Is(err, store.ErrTargetDeleting):
		return echo.NewHTTPError(http.StatusConflict, "cannot "+action+" this target: it is being deleted")
	case errors.Is(err, store.ErrTargetState):
		return echo.NewHTTPError(http.StatusConflict, "cannot "+action+" this target in its current state")
	}
	return err
}

func (s *Server) targetAction(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	action := c.Param("action")
	if _, err := s.doTargetAction(c.Request().Context(), id, action); err != nil {
		return actionError(action, err)
	}
	s.Log.Info("target action", "target", id, "action", action, "via", "ui")
	if action == "delete" {
		return c.Redirect(http.StatusSeeOther, "/targets")
	}
	return c.Redirect(http.StatusSeeOther, "/targets/"+i64(id)+"?msg="+action)
}

func (s *Server) deleteConfirm(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	t, err := s.Store.Target(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, deletePage(s.chrome(c, "Delete "+t.Name, "targets"), t))
}

func (s *Server) searchPage(c echo.Context) error {
	q := strings.TrimSpace(c.QueryParam("q"))
	target, err := queryID(c, "target")
	if err != nil {
		return err
	}
	var res store.SearchResults
	if q != "" {
		res, err = s.Store.Search(c.Request().Context(), store.SearchQuery{Query: q, TargetID: target, After: c.QueryParam("after"), Limit: 20})
		if errors.Is(err, store.ErrInvalidQuery) {
			return &fieldError{"q", strings.TrimPrefix(err.Error(), "store: ")}
		}
		if err != nil {
			return err
		}
	}
	return render(c, http.StatusOK, searchPage(s.chrome(c, "Search", "search"), q, target, res, q != "", timeRef{s.now()}))
}

func (s *Server) pagePage(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	p, err := s.Store.PageDetail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	title := p.URL
	if p.Page != nil && p.Page.Title != "" {
		title = p.Page.Title
	}
	return render(c, http.StatusOK, pagePage(s.chrome(c, title, ""), p, pipeline.NewID(), timeRef{s.now()}))
}

// doRecrawl runs the RPC and turns failures into a sentence for the user.
func (s *Server) doRecrawl(ctx context.Context, requestID string, urlID int64) (pipeline.RecrawlReply, string) {
	if s.Recrawl == nil || (s.BrokerUp != nil && !s.BrokerUp()) {
		return pipeline.RecrawlReply{}, "The message broker is unavailable: cannot ask a crawler right now."
	}
	// The service gives up after its own timeout (the same setting); this bound only guards
	// against a service that never returns.
	ctx, cancel := context.WithTimeout(ctx, s.RecrawlTimeout+5*time.Second)
	defer cancel()
	reply, err := s.Recrawl.Recrawl(ctx, requestID, urlID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return reply, msgGone
	case errors.Is(err, recrawl.ErrPending) || errors.Is(err, context.DeadlineExceeded):
		return reply, msgTimeout(s.RecrawlTimeout)
	case errors.Is(err, recrawl.ErrNotFetched):
		return reply, "No crawler fetched the page (" + err.Error() + "). Try again."
	case err != nil:
		s.Log.Warn("recrawl failed", "url_id", urlID, "err", err)
		return reply, "Re-crawl failed: " + err.Error()
	case !reply.Fetched:
		return reply, "The crawler did not fetch the page: " + reply.Error + ". Try again."
	}
	return reply, ""
}

const msgGone = "This URL no longer exists."

func msgTimeout(d time.Duration) string {
	return "No crawler answered within " + d.String() + ". Try again: resending the same request never fetches twice, and shows the reply once it has arrived."
}

func validRequestID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (s *Server) recrawlPage(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	reqID := c.FormValue("request_id")
	if !validRequestID(reqID) {
		return &fieldError{"request_id", "must be 8 to 64 letters, digits, - or _"}
	}
	reply, msg := s.doRecrawl(c.Request().Context(), reqID, id)
	frag := recrawlResult(id, reply, msg, reqID, pipeline.NewID(), csrfToken(c))
	if isHTMX(c) {
		return render(c, http.StatusOK, frag)
	}
	return render(c, http.StatusOK, wrapPage(s.chrome(c, "Re-crawl", ""), frag))
}

func (s *Server) urlFilter(c echo.Context) (store.URLFilter, error) {
	target, err := queryID(c, "target")
	if err != nil {
		return store.URLFilter{}, err
	}
	host := strings.TrimSpace(c.QueryParam("host"))
	if host == "" {
		host = strings.TrimSpace(c.FormValue("host"))
	}
	class := strings.TrimSpace(c.QueryParam("class"))
	if class == "" {
		class = strings.TrimSpace(c.FormValue("class"))
	}
	return store.URLFilter{TargetID: target, Host: host, ErrorClass: class, Limit: 50}, nil
}

func deadFilter(f store.URLFilter) store.DeadLetterFilter {
	return store.DeadLetterFilter{TargetID: f.TargetID, Host: f.Host, ErrorClass: f.ErrorClass}
}

func (s *Server) retriesPage(c echo.Context) error {
	f, err := s.urlFilter(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d := retriesData{Filter: f, Now: timeRef{s.now()}, Msg: c.QueryParam("msg")}
	rf := f
	rf.After = c.QueryParam("r_after")
	if d.Retrying, err = s.Store.Retrying(ctx, rf); err != nil {
		return invalidQuery(err, "r_after")
	}
	ff := f
	ff.After = c.QueryParam("f_after")
	if d.Failed, err = s.Store.Failed(ctx, ff); err != nil {
		return invalidQuery(err, "f_after")
	}
	df := deadFilter(f)
	df.Limit = 50
	if v := c.QueryParam("d_after"); v != "" {
		df.AfterID, _ = strconv.ParseInt(v, 10, 64)
	}
	if s.DeadLetters == nil {
		d.DeadErr = describe(errBrokerUnavailable, "dead letters")
	} else if dls, err := s.DeadLetters.List(ctx, df); err != nil {
		d.DeadErr = describe(err, "dead letters")
	} else {
		d.Dead = dls
		if len(dls) == df.Limit {
			d.DeadNext = dls[len(dls)-1].ID
		}
	}
	if m, ok := retryFlashes[d.Msg]; ok {
		failed, _ := strconv.Atoi(c.QueryParam("failed"))
		d.Msg = strings.ReplaceAll(m, "N", c.QueryParam("n"))
		if d.Msg != "" && c.QueryParam("msg") == "requeued" && failed > 0 {
			d.Msg += " " + strconv.Itoa(failed) + " could not be requeued and are still listed."
		}
	} else {
		d.Msg = ""
	}
	return render(c, http.StatusOK, retriesPage(s.chrome(c, "Retries & dead letters", "retries"), d))
}

var retryFlashes = map[string]string{
	"requeued": "Requeued N dead letters to their original queues.",
	"purged":   "Purged N dead letters.",
}

func (s *Server) deadLetters() (DeadLetters, error) {
	if s.DeadLetters == nil || (s.BrokerUp != nil && !s.BrokerUp()) {
		return nil, errBrokerUnavailable
	}
	return s.DeadLetters, nil
}

// deadLetterError maps a dead-letter action's failure: a missing row is 404, a row that cannot
// be requeued is 409, a database outage 503 (by the error handler), anything else is the broker.
func deadLetterError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "dead letter not found (already requeued or purged?)")
	case errors.Is(err, deadletter.ErrNoOrigin):
		return echo.NewHTTPError(http.StatusConflict, "cannot requeue: the dead letter does not say where it was published")
	case store.Transient(err) && !strings.Contains(err.Error(), "pipeline"):
		return err
	}
	return errors.Join(errBrokerUnavailable, err)
}

func (s *Server) requeueOne(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	dl, err := s.deadLetters()
	if err != nil {
		return err
	}
	n, err := dl.Requeue(c.Request().Context(), []int64{id})
	if err != nil {
		return deadLetterError(err)
	}
	s.Log.Info("dead letter requeued", "id", id, "n", n)
	if isHTMX(c) {
		if n == 0 {
			return c.HTML(http.StatusOK, `<span class="muted">already gone</span>`)
		}
		return c.HTML(http.StatusOK, `<span class="ok requeued">requeued</span>`)
	}
	return c.Redirect(http.StatusSeeOther, "/retries?msg=requeued&n="+itoa(n))
}

// deadLetterForm returns the filter of a bulk dead-letter action's form and the service to
// act with.
func (s *Server) deadLetterForm(c echo.Context) (store.URLFilter, DeadLetters, error) {
	f, err := s.urlFilter(c)
	if err != nil {
		return f, nil, err
	}
	dl, err := s.deadLetters()
	return f, dl, err
}

func (s *Server) requeueAll(c echo.Context) error {
	f, dl, err := s.deadLetterForm(c)
	if err != nil {
		return err
	}
	counts, err := dl.RequeueAll(c.Request().Context(), deadFilter(f))
	extendDeadlines(c) // it may have outlasted the server's write timeout: answer all the same
	n := counts.Requeued
	if err != nil && n == 0 && counts.Skipped == 0 && !errors.Is(err, deadletter.ErrNoOrigin) {
		return deadLetterError(err)
	}
	if err != nil {
		s.Log.Warn("some dead letters were not requeued", "requeued", n, "failed", counts.Failed, "err", err)
	}
	s.Log.Info("dead letters requeued", "n", n)
	return c.Redirect(http.StatusSeeOther, retriesURL(f, "msg", "requeued")+"&n="+itoa(n)+"&failed="+itoa(counts.Failed))
}

// purgeLimit caps how many matching dead letters the purge confirmation counts.
const purgeLimit = 1000

// purgeConfirm asks before a purge, without JavaScript: it shows how many dead letters match
// the filter, and its form POSTs to purge.
func (s *Server) purgeConfirm(c echo.Context) error {
	f, dl, err := s.deadLetterForm(c)
	if err != nil {
		return err
	}
	df := deadFilter(f)
	df.Limit = purgeLimit
	rows, err := dl.List(c.Request().Context(), df)
	if err != nil {
		return deadLetterError(err)
	}
	return render(c, http.StatusOK, purgePage(s.chrome(c, "Purge dead letters", "retries"), f, len(rows), len(rows) == purgeLimit))
}

func (s *Server) purge(c echo.Context) error {
	f, dl, err := s.deadLetterForm(c)
	if err != nil {
		return err
	}
	n, err := dl.Purge(c.Request().Context(), deadFilter(f))
	if err != nil {
		return deadLetterError(err)
	}
	s.Log.Info("dead letters purged", "n", n)
	return c.Redirect(http.StatusSeeOther, retriesURL(f, "msg", "purged")+"&n="+itoa(n))
}

func (s *Server) workerList() []WorkerInfo {
	if s.Workers == nil {
		return nil
	}
	return s.Workers.List()
}

func (s *Server) brokerDown() bool { return s.BrokerUp != nil && !s.BrokerUp() }

func (s *Server) workersPage(c echo.Context) error {
	return render(c, http.StatusOK, workersPage(s.chrome(c, "Workers", "workers"), s.workerList(), s.brokerDown(), timeRef{s.now()}))
}

func (s *Server) workersList(c echo.Context) error {
	return render(c, http.StatusOK, workersTable(s.workerList(), s.brokerDown(), timeRef{s.now()}))
}

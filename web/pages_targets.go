package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

func (s *Server) targetsPage(c echo.Context) error {
	q := targetListQuery(c)
	list, err := s.targetList(c.Request().Context(), q)
	if err != nil {
		return err
	}
	form := targetForm{Values: map[string]string{"scope": "host"}}
	ch := s.chrome(c, "Targets", "targets")
	ch.Live = liveURL(c, "/events/targets")
	return render(c, http.StatusOK, targetsPage(ch, list, form, q.State))
}

// targetListQuery is the page of targets a request asks for, on the page and in its stream:
// after or before a cursor, with a total.
func targetListQuery(c echo.Context) store.TargetQuery {
	return store.TargetQuery{State: c.QueryParam("state"), After: c.QueryParam("after"), Before: c.QueryParam("before"),
		Limit: 50, Count: true}
}

// targetList reads a page of targets; a bad filter or cursor is a 400 naming the parameter.
func (s *Server) targetList(ctx context.Context, q store.TargetQuery) (store.TargetList, error) {
	list, err := s.Store.TargetList(ctx, q)
	if err != nil {
		field := "after"
		if q.Before != "" {
			field = "before"
		}
		if strings.Contains(err.Error(), "target state") {
			field = "state"
		}
		return list, invalidQuery(err, field)
	}
	return list, nil
}

var formFields = []string{"seed_url", "name", "scope", "scope_prefix", "max_depth", "max_pages", "per_host_rps",
	"recrawl_interval", "max_attempts", "include", "exclude", "search_language"}

// parseTargetForm reads the add-target form. Number fields that do not parse are reported
// (all at once); the rest is checked by target.Request.Spec.
func parseTargetForm(c echo.Context) (target.Request, targetForm) {
	f := targetForm{Values: map[string]string{}, Errors: map[string]string{}}
	for _, k := range formFields {
		f.Values[k] = c.FormValue(k)
	}
	req := target.Request{SeedURL: f.Values["seed_url"], Name: f.Values["name"], Scope: f.Values["scope"],
		ScopePrefix: f.Values["scope_prefix"], RecrawlInterval: strings.TrimSpace(f.Values["recrawl_interval"]),
		Include: f.Values["include"], Exclude: f.Values["exclude"], SearchLanguage: f.Values["search_language"]}
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

// formErrors adds the fields at fault in err (a target.FieldErrors) to the form's errors,
// keeping an error the form already found on a field (a number that does not parse); any other
// error is returned.
func formErrors(f targetForm, err error) error {
	var fes target.FieldErrors
	if !errors.As(err, &fes) {
		return err
	}
	for _, fe := range fes {
		if _, ok := f.Errors[fe.Field]; !ok {
			f.Errors[fe.Field] = fe.Msg
		}
	}
	return nil
}

func (s *Server) addTarget(c echo.Context) error {
	req, form := parseTargetForm(c)
	// Validated even when a field did not parse, so that every error shows at once.
	spec, err := req.Spec()
	if err := formErrors(form, err); err != nil {
		return err
	}
	var t store.Target
	if len(form.Errors) == 0 {
		var err error
		t, err = s.Store.CreateTarget(c.Request().Context(), spec)
		var fe *target.FieldError // a rule only the store can check, such as a search language
		if errors.As(err, &fe) {
			form.Errors[fe.Field] = fe.Msg
		} else if err != nil {
			if isHTMX(c) {
				form.Errors["form"] = describe(err, "the new target")
				return render(c, http.StatusOK, targetFormView(form, csrfToken(c)))
			}
			return err
		}
	}
	if len(form.Errors) > 0 {
		if isHTMX(c) {
			// 200 so htmx swaps the form with its errors in place.
			return render(c, http.StatusOK, targetFormView(form, csrfToken(c)))
		}
		list, err := s.Store.TargetList(c.Request().Context(), store.TargetQuery{Limit: 50, Count: true})
		if err != nil {
			form.Errors["form"] = describe(err, "the target list")
		}
		return render(c, http.StatusUnprocessableEntity, targetsPage(s.chrome(c, "Targets", "targets"), list, form, ""))
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
		Desc: c.QueryParam("desc") == "1", After: c.QueryParam("after"), Before: c.QueryParam("before"), Limit: 50}
}

func (s *Server) targetPage(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := s.pageQuery(c, id)
	q.Count = true
	d, err := s.targetLive(ctx, id, q, c.QueryParam("hosts_after"))
	if err != nil {
		return err
	}
	d.Msg = flash(c.QueryParam("msg"))
	if d.Pages, err = s.Store.Pages(ctx, d.Q); err != nil {
		if errors.Is(err, store.ErrInvalidQuery) {
			return &fieldError{"query", strings.TrimPrefix(err.Error(), "store: ")}
		}
		return err
	}
	ch := s.chrome(c, d.T.Name, "targets")
	ch.Live = liveURL(c, "/events/targets/"+i64(id))
	return render(c, http.StatusOK, targetPage(ch, d))
}

// targetLive reads the parts of a target's page that its stream keeps current: the target
// with its figures, one page of its hosts, its errors and its throughput chart. The page adds
// its pages (which do not move under the reader: they change on a reload).
func (s *Server) targetLive(ctx context.Context, id int64, q store.PageQuery, hostsAfter string) (targetDetail, error) {
	d := targetDetail{Q: q, Now: timeRef{s.now()}}
	var err error
	if d.T, err = s.Store.TargetSummary(ctx, id); err != nil {
		return d, err
	}
	if d.Hosts, err = s.Store.TargetHosts(ctx, id, hostsAfter, 50); err != nil {
		return d, err
	}
	if d.Errors, err = s.Store.TargetErrors(ctx, id, 20); err != nil {
		return d, err
	}
	if pts, err := s.Store.Throughput(ctx, id, chartWindow, chartBucket); err != nil {
		d.ChartErr = describe(err, "the throughput chart")
	} else {
		d.Chart = buildChart(pts, chartBucket, d.Now.now)
	}
	return d, nil
}

var flashes = map[string]string{
	"pause":   "Paused: nothing more of this target is dispatched; fetches in flight finish.",
	"resume":  "Resumed.",
	"cancel":  "Cancelled: queued URLs will not be fetched.",
	"recrawl": "Re-crawl queued: the target's URLs will be fetched again.",
	"edit":    "Saved. A new rate paces the target's hosts now; the other changes apply from the scheduler's next tick.",
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

// pathTarget reads the target the path's id names.
func (s *Server) pathTarget(c echo.Context) (store.Target, error) {
	id, err := pathID(c)
	if err != nil {
		return store.Target{}, err
	}
	return s.Store.Target(c.Request().Context(), id)
}

// editableTarget is pathTarget for the edit form: a target being deleted is a 409.
func (s *Server) editableTarget(c echo.Context) (store.Target, error) {
	t, err := s.pathTarget(c)
	if err == nil && t.State == store.TargetDeleting {
		err = actionError("edit", store.ErrTargetDeleting)
	}
	return t, err
}

func (s *Server) deleteConfirm(c echo.Context) error {
	t, err := s.pathTarget(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, deletePage(s.chrome(c, "Delete "+t.Name, "targets"), t))
}

// editValues are a target's editable fields as the edit form shows them.
func editValues(t store.Target) map[string]string {
	v := map[string]string{
		"name": t.Name, "max_depth": itoa(t.MaxDepth), "max_pages": itoa(t.MaxPages),
		"per_host_rps": strconv.FormatFloat(t.PerHostRPS, 'g', -1, 64), "max_attempts": itoa(t.MaxAttempts),
		"recrawl_interval": "", "sitemaps": "on", "include": t.Include, "exclude": t.Exclude,
	}
	if t.RecrawlInterval > 0 {
		v["recrawl_interval"] = shortDuration(t.RecrawlInterval)
	}
	if !t.Sitemaps {
		v["sitemaps"] = "off"
	}
	return v
}

// shortDuration writes d as a Go duration without the zero minutes and seconds that
// Duration.String leaves: 24h, 1h30m, 1m30s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// editTargetPage shows the edit form of a target, filled in with its spec.
func (s *Server) editTargetPage(c echo.Context) error {
	t, err := s.editableTarget(c)
	if err != nil {
		return err
	}
	form := targetForm{Values: editValues(t), Errors: map[string]string{}}
	return render(c, http.StatusOK, editTargetPage(s.chrome(c, "Edit "+t.Name, "targets"), t, form))
}

// saveTarget applies the edit form (every field, an empty one meaning its default, as when
// adding: target.Request.Patch). Every field at fault is shown at once, in place with htmx.
func (s *Server) saveTarget(c echo.Context) error {
	t, err := s.editableTarget(c)
	if err != nil {
		return err
	}
	id, ctx := t.ID, c.Request().Context()
	req, form := parseTargetForm(c)
	patch := req.Patch()
	_, err = patch.Apply(t.Spec)
	if err := formErrors(form, err); err != nil {
		return err
	}
	if len(form.Errors) == 0 {
		// The target may have changed since it was read: the edit applies to it as it is then.
		_, err := s.Store.UpdateTarget(ctx, id, patch.Apply)
		if err := formErrors(form, err); err != nil {
			return actionError("edit", err)
		}
	}
	if len(form.Errors) > 0 {
		if isHTMX(c) {
			// 200 so htmx swaps the form with its errors in place.
			return render(c, http.StatusOK, editTargetForm(t, form, csrfToken(c)))
		}
		return render(c, http.StatusUnprocessableEntity, editTargetPage(s.chrome(c, "Edit "+t.Name, "targets"), t, form))
	}
	s.Log.Info("target action", "target", id, "action", "edit", "via", "ui")
	dest := "/targets/" + i64(id) + "?msg=edit"
	if isHTMX(c) {
		c.Response().Header().Set("HX-Redirect", dest)
		return c.NoContent(http.StatusOK)
	}
	return c.Redirect(http.StatusSeeOther, dest)
}

// scopeLabel names a scope kind as the add form does.
func scopeLabel(kind string) string {
	switch kind {
	case "domain":
		return "same domain"
	case "prefix":
		return "path prefix"
	}
	return "same host"
}

// fieldErrorCount is the number of fields at fault in a form.
func fieldErrorCount(f targetForm) int {
	n := len(f.Errors)
	if _, ok := f.Errors["form"]; ok {
		n--
	}
	return n
}

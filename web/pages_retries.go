package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/store"
)

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
	f.Count = true
	rf := f
	rf.After, rf.Before = c.QueryParam("r_after"), c.QueryParam("r_before")
	if d.Retrying, err = s.Store.Retrying(ctx, rf); err != nil {
		return invalidQuery(err, "r_after")
	}
	ff := f
	ff.After, ff.Before = c.QueryParam("f_after"), c.QueryParam("f_before")
	if d.Failed, err = s.Store.Failed(ctx, ff); err != nil {
		return invalidQuery(err, "f_after")
	}
	// The target filter offers the newest targets by name (and keeps the one asked for).
	if d.Targets, err = s.targetChoices(ctx); err != nil {
		return err
	}
	if err := s.deadLetterPage(c, &d); err != nil {
		return err
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

// filterTargets is how many targets, newest first, a page's target filter offers (search,
// retries): enough for a select, bounded for a database of many targets.
const filterTargets = 500

// targetChoices are the options of a page's target filter: the newest filterTargets targets.
func (s *Server) targetChoices(ctx context.Context) ([]store.Target, error) {
	return s.Store.Targets(ctx, filterTargets)
}

// deadLetterPage fills d's page of dead letters: after d_after or before d_before (ids), with
// the ids of the neighbouring pages and how many match the filter. Broker or database trouble
// is shown in place of the list.
func (s *Server) deadLetterPage(c echo.Context, d *retriesData) error {
	const limit = 50
	after, err := queryID(c, "d_after")
	if err != nil {
		return err
	}
	before, err := queryID(c, "d_before")
	if err != nil {
		return err
	}
	if s.DeadLetters == nil {
		d.DeadErr = describe(errBrokerUnavailable, "dead letters")
		return nil
	}
	ctx := c.Request().Context()
	df := deadFilter(d.Filter)
	if d.DeadTotal, err = s.Store.CountDeadLetters(ctx, df); err != nil {
		d.DeadErr = describe(err, "dead letters")
		return nil
	}
	// One more than shown tells whether there is a page beyond.
	df.Limit, df.AfterID, df.BeforeID = limit+1, after, before
	dls, err := s.DeadLetters.List(ctx, df)
	if err != nil {
		d.DeadErr = describe(err, "dead letters")
		return nil
	}
	backward := before > 0 && after == 0
	if backward && len(dls) < limit {
		// Back at the start: the first page, full.
		df.BeforeID, backward = 0, false
		if dls, err = s.DeadLetters.List(ctx, df); err != nil {
			d.DeadErr = describe(err, "dead letters")
			return nil
		}
	}
	more := len(dls) > limit
	switch {
	case more && backward:
		dls = dls[1:]
	case more:
		dls = dls[:limit]
	}
	d.Dead = dls
	if len(dls) > 0 {
		if more || backward {
			d.DeadNext = dls[len(dls)-1].ID
		}
		if (more && backward) || (!backward && after > 0) {
			d.DeadPrev = dls[0].ID
		}
	}
	return nil
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

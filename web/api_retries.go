package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/store"
)

func (s *Server) apiURLFilter(c echo.Context) (store.URLFilter, error) {
	f, err := s.urlFilter(c)
	if err != nil {
		return f, err
	}
	f.After, f.Before = c.QueryParam("after"), c.QueryParam("before")
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
	return c.JSON(http.StatusOK, toURLListJSON(l))
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
	out := map[string]any{"dead_letters": mapJSON(rows, toDeadLetterJSON)}
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

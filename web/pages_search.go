package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/recrawl"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

func (s *Server) searchPage(c echo.Context) error {
	v := searchView{Q: strings.TrimSpace(c.QueryParam("q"))}
	var err error
	if v.Target, err = queryID(c, "target"); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if v.Q != "" {
		v.Res, err = s.Store.Search(ctx, store.SearchQuery{Query: v.Q, TargetID: v.Target, After: c.QueryParam("after"), Limit: 20})
		if errors.Is(err, store.ErrInvalidQuery) {
			return &fieldError{"q", strings.TrimPrefix(err.Error(), "store: ")}
		}
		if err != nil {
			return err
		}
		v.Searched = true
	}
	// The target filter's choices; a filter on a target not among them keeps its own.
	if v.Targets, err = s.targetChoices(ctx); err != nil {
		return err
	}
	if v.Target != 0 && !slices.ContainsFunc(v.Targets, func(t store.Target) bool { return t.ID == v.Target }) {
		v.Targets = append(v.Targets, store.Target{ID: v.Target, Spec: target.Spec{Name: "target"}})
	}
	return render(c, http.StatusOK, searchPage(s.chrome(c, "Search", "search"), v, timeRef{s.now()}))
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
	return render(c, http.StatusOK, pagePage(s.chrome(c, title, ""), p, message.NewID(), timeRef{s.now()}))
}

// doRecrawl runs the RPC and turns failures into a sentence for the user.
func (s *Server) doRecrawl(ctx context.Context, requestID string, urlID int64) (message.RecrawlReply, string) {
	if s.Recrawl == nil || (s.BrokerUp != nil && !s.BrokerUp()) {
		return message.RecrawlReply{}, "The message broker is unavailable: cannot ask a crawler right now."
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
	frag := recrawlResult(id, reply, msg, reqID, message.NewID(), csrfToken(c))
	if isHTMX(c) {
		return render(c, http.StatusOK, frag)
	}
	return render(c, http.StatusOK, wrapPage(s.chrome(c, "Re-crawl", ""), frag))
}

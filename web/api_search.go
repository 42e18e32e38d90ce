package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/store"
)

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
	return c.JSON(http.StatusOK, toSearchResultsJSON(res))
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
	return c.JSON(http.StatusOK, toPageDetailJSON(p))
}

func (s *Server) apiHistory(c echo.Context) error {
	return idList(c, 50, "history", func(ctx context.Context, id int64, limit int) ([]FetchJSON, error) {
		h, err := s.Store.FetchHistory(ctx, id, limit)
		return mapJSON(h, toFetchJSON), err
	})
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
		req.RequestID = message.NewID()
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
		return c.JSON(status, map[string]any{"error": msg, "request_id": req.RequestID, "reply": toRecrawlReplyJSON(reply)})
	}
	return c.JSON(http.StatusOK, toRecrawlReplyJSON(reply))
}

package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

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
		out["queues"] = mapJSON(qs, toQueueJSON)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiQueues(c echo.Context) error {
	qs, err := s.queueStats(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"queues": mapJSON(qs, toQueueJSON)})
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
	return c.JSON(http.StatusOK, map[string]any{"bucket_seconds": bucket.Seconds(), "points": mapJSON(pts, toRatePointJSON)})
}

func (s *Server) apiWorkers(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"workers": mapJSON(s.workerList(), toWorkerJSON)})
}

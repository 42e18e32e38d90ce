package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/pipeline"
)

// Chart geometry: the overview shows the last 15 minutes in 15-second buckets.
const (
	chartWindow = 15 * time.Minute
	chartBucket = 15 * time.Second
)

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
	ch := s.chrome(c, "Overview", "overview")
	ch.Live = "/events/overview"
	return render(c, http.StatusOK, overviewPage(ch, s.overviewData(c.Request().Context())))
}

func (s *Server) workerList() []WorkerInfo {
	if s.Workers == nil {
		return nil
	}
	return s.Workers.List()
}

func (s *Server) brokerDown() bool { return s.BrokerUp != nil && !s.BrokerUp() }

func (s *Server) workersPage(c echo.Context) error {
	ch := s.chrome(c, "Workers", "workers")
	ch.Live = "/events/workers"
	return render(c, http.StatusOK, workersPage(ch, s.workerList(), s.brokerDown(), timeRef{s.now()}))
}

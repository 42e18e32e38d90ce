package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrQueueNotFound is returned by Admin when the broker does not know a queue.
var ErrQueueNotFound = errors.New("pipeline: queue not found")

// Admin reads queue statistics from the broker itself, through the RabbitMQ management HTTP API
// (GET /api/queues/<vhost>/<name>). The API refreshes its figures every few seconds
// (collect_statistics_interval, 5 s by default), so counts lag the queue slightly.
type Admin struct {
	base     *url.URL // scheme://host:port[/path], no credentials
	user     string
	password string
	vhost    string
	topo     Topology
	http     *http.Client
	fallback *Conn
}

// Close releases the Admin's idle connections to the management API.
func (a *Admin) Close() { a.http.CloseIdleConnections() }

// WithFallback makes QueueStats fall back to passive queue declarations on conn when the
// management API cannot be reached: ready and consumer counts only, Unacked -1 (unknown), Source
// "amqp".
func (a *Admin) WithFallback(conn *Conn) *Admin {
	a.fallback = conn
	return a
}

// ManagementURL derives the management API base URL from the first of the comma-separated AMQP
// URLs: same host and credentials, port 15672 (15671 with https for amqps).
func ManagementURL(amqpURLs string) (string, error) {
	first, _, _ := strings.Cut(amqpURLs, ",")
	uri, err := amqp.ParseURI(strings.TrimSpace(first))
	if err != nil {
		return "", fmt.Errorf("pipeline: management url from broker url: %w", err)
	}
	scheme, port := "http", 15672
	if uri.Scheme == "amqps" {
		scheme, port = "https", 15671
	}
	u := url.URL{Scheme: scheme, User: url.UserPassword(uri.Username, uri.Password),
		Host: net.JoinHostPort(uri.Host, strconv.Itoa(port))}
	return u.String(), nil
}

// NewAdmin returns an Admin for topo. managementURL is the API's base URL with credentials
// (http://user:pass@host:15672); when empty it is derived from amqpURLs. The vhost is the one
// of the first AMQP URL.
func NewAdmin(managementURL, amqpURLs string, topo Topology) (*Admin, error) {
	first, _, _ := strings.Cut(amqpURLs, ",")
	uri, err := amqp.ParseURI(strings.TrimSpace(first))
	if err != nil {
		return nil, fmt.Errorf("pipeline: admin: broker url: %w", err)
	}
	if managementURL == "" {
		if managementURL, err = ManagementURL(amqpURLs); err != nil {
			return nil, err
		}
	}
	base, err := url.Parse(managementURL)
	if err != nil {
		return nil, fmt.Errorf("pipeline: admin: TRAWL_AMQP_MANAGEMENT_URL: %w", err)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("pipeline: admin: TRAWL_AMQP_MANAGEMENT_URL: want http(s)://user:pass@host:port, got scheme %q host %q", base.Scheme, base.Host)
	}
	// Its own transport, so Close can release its keep-alive connections.
	a := &Admin{vhost: uri.Vhost, topo: topo, http: &http.Client{Timeout: 10 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	if base.User != nil {
		a.user = base.User.Username()
		a.password, _ = base.User.Password()
		base.User = nil
	} else {
		a.user, a.password = uri.Username, uri.Password
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawQuery, base.Fragment = "", ""
	a.base = base
	return a, nil
}

// BaseURL is the management API address, without credentials.
func (a *Admin) BaseURL() string { return a.base.String() }

// QueueStats returns the depth of the topology's queues: crawl jobs, pages, dead letters and
// re-crawl RPC requests, in that order.
func (a *Admin) QueueStats(ctx context.Context) ([]QueueStat, error) {
	queues := []struct{ name, role string }{
		{a.topo.CrawlQueue(), "crawl.jobs"},
		{a.topo.PagesQueue(), "pages"},
		{a.topo.DeadLetterQueue(), "dead-letters"},
		{a.topo.RecrawlQueue(), "rpc.recrawl"},
	}
	out := make([]QueueStat, 0, len(queues))
	for _, q := range queues {
		st, err := a.QueueStat(ctx, q.name)
		if err != nil && a.fallback != nil && !errors.Is(err, ErrQueueNotFound) && ctx.Err() == nil {
			return a.passiveStats(ctx, queues, err)
		}
		if err != nil {
			return nil, err
		}
		st.Role = q.role
		out = append(out, st)
	}
	return out, nil
}

// passiveStats reads ready and consumer counts with passive declarations, after the management
// API failed with cause.
func (a *Admin) passiveStats(ctx context.Context, queues []struct{ name, role string }, cause error) ([]QueueStat, error) {
	out := make([]QueueStat, 0, len(queues))
	for _, q := range queues {
		// A failed passive declare closes its channel: one channel per queue.
		ch, err := a.fallback.Channel(ctx)
		if err != nil {
			return nil, fmt.Errorf("pipeline: queue stats: %w (fallback: %w)", cause, err)
		}
		info, err := ch.QueueDeclarePassive(q.name, true, false, false, false, nil)
		_ = ch.Close()
		if err != nil {
			var aerr *amqp.Error
			if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
				return nil, fmt.Errorf("pipeline: queue stats: %w: %s", ErrQueueNotFound, q.name)
			}
			return nil, fmt.Errorf("pipeline: queue stats: %w (fallback: %w)", cause, err)
		}
		out = append(out, QueueStat{Name: q.name, Role: q.role, Ready: int64(info.Messages), Unacked: -1,
			Consumers: int64(info.Consumers), Source: "amqp", Cause: cause.Error()})
	}
	return out, nil
}

// QueueStat returns one queue's ready, unacknowledged and consumer counts.
func (a *Admin) QueueStat(ctx context.Context, queue string) (QueueStat, error) {
	// The vhost "/" must travel as %2F, so the path is built escaped.
	u := a.base.String() + "/api/queues/" + url.PathEscape(a.vhost) + "/" + url.PathEscape(queue) +
		"?columns=name,messages_ready,messages_unacknowledged,consumers"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return QueueStat{}, fmt.Errorf("pipeline: queue stats %s: %w", queue, err)
	}
	req.SetBasicAuth(a.user, a.password)
	req.Header.Set("Accept", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return QueueStat{}, fmt.Errorf("pipeline: queue stats %s: management api at %s: %w", queue, a.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return QueueStat{}, fmt.Errorf("pipeline: queue stats %s: read: %w", queue, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return QueueStat{}, fmt.Errorf("pipeline: queue stats: %w: %s (vhost %q)", ErrQueueNotFound, queue, a.vhost)
	case http.StatusUnauthorized, http.StatusForbidden:
		return QueueStat{}, fmt.Errorf("pipeline: queue stats %s: management api at %s refused the credentials (status %d); set TRAWL_AMQP_MANAGEMENT_URL", queue, a.base, resp.StatusCode)
	default:
		return QueueStat{}, fmt.Errorf("pipeline: queue stats %s: management api at %s: status %d", queue, a.base, resp.StatusCode)
	}
	// Counters are absent until the broker has emitted the queue's first statistics.
	var v struct {
		Name      string `json:"name"`
		Ready     int64  `json:"messages_ready"`
		Unacked   int64  `json:"messages_unacknowledged"`
		Consumers int64  `json:"consumers"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return QueueStat{}, fmt.Errorf("pipeline: queue stats %s: decode: %w", queue, err)
	}
	return QueueStat{Name: queue, Ready: v.Ready, Unacked: v.Unacked, Consumers: v.Consumers, Source: "management"}, nil
}

// QueueStat is one queue's depth as the broker reports it.
type QueueStat struct {
	Name      string
	Role      string // crawl.jobs, pages, dead-letters, rpc, ...
	Ready     int64
	Unacked   int64
	Consumers int64
	// Source says where the figures come from: "management" (the management API, every field)
	// or "amqp" (passive declare: Unacked is -1, unknown).
	Source string
	// Cause, with Source "amqp", is why the management API was not used: its error, which names
	// the API's address (never its credentials).
	Cause string
}

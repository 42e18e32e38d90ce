package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/store"
)

// Live views: every page that shows changing state names a stream in Chrome.Live, and the
// layout connects to it with htmx's SSE extension. A stream sends named events whose data is
// an HTML fragment; the page's element marked sse-swap with that name takes it. See
// docs/adr/0055-live-dashboard.md.

// sseEvent is one named fragment of a live view.
type sseEvent struct {
	name string
	body templ.Component
}

// sseClose is the event that makes the page close its stream for good (the layout's
// sse-close), so that it does not reconnect to something that is gone.
const sseClose = "close"

// errStreamEnd, returned by a stream's build function, ends the stream after the events
// returned with it, and tells the page not to reconnect.
var errStreamEnd = errors.New("web: live view ended")

// writeEvent writes one server-sent event whose data is html (one data: line per line). A
// carriage return, which SSE also reads as a line end, becomes a newline, so that no text
// (a crawled title) can end a data line early.
func writeEvent(w io.Writer, event string, html []byte) error {
	html = bytes.ReplaceAll(html, []byte{'\r'}, []byte{'\n'})
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\n", event)
	sc := bufio.NewScanner(bytes.NewReader(html))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		b.WriteString("data: ")
		b.Write(sc.Bytes())
		b.WriteByte('\n')
	}
	if b.Len() == len("event: ")+len(event)+1 {
		b.WriteString("data: \n") // an event without data is not dispatched
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// Running times in a fragment (relTime and elapsedTime in layout.templ) are kept current in
// the browser by web/static/reltime.js, which only browsers with JavaScript, the only ones
// that read a stream, run. So their text (and an elapsed time's datetime) says nothing new:
// changeKey leaves it out of the comparison that decides whether a fragment changed, and a
// finished target's page, whose times all move, stays quiet.
var (
	relTimeText = regexp.MustCompile(`( data-rel>)[^<]*(</time>)`)
	elapsedText = regexp.MustCompile(`<time datetime="[^"]*"( data-since="[^"]*">)[^<]*(</time>)`)
)

// changeKey is what of a fragment's HTML must differ for it to be sent again.
func changeKey(html []byte) []byte {
	html = relTimeText.ReplaceAll(html, []byte("$1$2"))
	return elapsedText.ReplaceAll(html, []byte("<time$1$2"))
}

// keepAlive is an SSE comment, written on a tick that changed nothing: it keeps proxies from
// closing an idle stream and moves the write deadline.
const keepAlive = ": keep-alive\n\n"

// stream pushes the fragments that build returns every refresh interval until the client
// goes away, the server shuts down, the session ends or build returns errStreamEnd. A
// fragment is sent only when it differs from what this stream last sent under its name (but
// for the running times the browser keeps current itself: changeKey), so a part that did not
// change is not replaced (nor its focus and selection disturbed).
// While build fails for want of the database, the page keeps what it shows and the stream
// goes on (the first failure of a run is logged); any other failure ends it.
func (s *Server) stream(c echo.Context, name string, build func(ctx context.Context) ([]sseEvent, error)) error {
	w := c.Response()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	extendDeadlines(c)
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", s.RefreshInterval.Milliseconds()); err != nil {
		return nil
	}
	w.Flush()
	ctx := c.Request().Context()
	t := time.NewTicker(s.RefreshInterval)
	defer t.Stop()
	// A stream opened with a session cookie ends soon after the session does (logout
	// everywhere, a new password), rather than pushing pages to a revoked browser for hours.
	// While the database cannot say, the stream goes on: nothing can be revoked meanwhile.
	bySession := s.Auth.Enabled() && sessionToken(c.Request()) != ""
	checked := time.Now()
	sent := map[string][]byte{}
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.stop:
			return nil
		case <-t.C:
		}
		if bySession && time.Since(checked) >= s.sessionRecheck {
			checked = time.Now()
			if ok, err := s.validSession(c.Request()); err == nil && !ok {
				return nil
			}
		}
		events, err := build(ctx)
		end := errors.Is(err, errStreamEnd)
		switch {
		case err == nil || end:
			failing = false
		case ctx.Err() != nil:
			return nil
		case store.Transient(err) || errors.Is(err, context.DeadlineExceeded):
			if !failing {
				s.Log.Warn("live update failed; retrying", "stream", name, "err", err)
			}
			failing = true
			events = nil
		default:
			s.Log.Warn("live update failed; ending the stream", "stream", name, "err", err)
			events, end = nil, true
		}
		if end {
			events = append(events, sseEvent{name: sseClose, body: templ.NopComponent})
		}
		var out bytes.Buffer
		for _, ev := range events {
			var buf bytes.Buffer
			if err := ev.body.Render(ctx, &buf); err != nil {
				s.Log.Warn("live update render failed", "stream", name, "event", ev.name, "err", err)
				continue
			}
			key := changeKey(buf.Bytes())
			if last, ok := sent[ev.name]; ok && bytes.Equal(last, key) {
				continue
			}
			sent[ev.name] = key
			_ = writeEvent(&out, ev.name, buf.Bytes())
		}
		if out.Len() == 0 {
			out.WriteString(keepAlive)
		}
		extendDeadlines(c)
		if _, err := w.Write(out.Bytes()); err != nil {
			return nil // client gone
		}
		w.Flush()
		if end {
			return nil
		}
	}
}

// liveURL is the stream of the page c shows: path with the page's own query, so that the
// stream pushes the same filter, sort and page of a list.
func liveURL(c echo.Context, path string) string {
	if q := c.QueryString(); q != "" {
		return path + "?" + q
	}
	return path
}

func (s *Server) overviewEvents(c echo.Context) error {
	return s.stream(c, "overview", func(ctx context.Context) ([]sseEvent, error) {
		return []sseEvent{{"overview", overviewBody(s.liveOverview(ctx))}}, nil
	})
}

// liveOverview shares one computation of the overview between every open stream: however
// many browsers watch, the database and the management API are asked about once per refresh.
func (s *Server) liveOverview(ctx context.Context) overviewData {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	if !s.live.at.IsZero() && time.Since(s.live.at) < s.RefreshInterval/2 {
		return s.live.data
	}
	s.live.data = s.overviewData(ctx)
	s.live.at = time.Now()
	return s.live.data
}

// targetsEvents pushes the targets list with the page's filter and cursor.
func (s *Server) targetsEvents(c echo.Context) error {
	q := targetListQuery(c)
	return s.stream(c, "targets", func(ctx context.Context) ([]sseEvent, error) {
		list, err := s.targetList(ctx, q)
		if err != nil {
			return nil, err
		}
		return []sseEvent{{"targets", targetsTable(list, q.State, csrfToken(c))}}, nil
	})
}

// targetEvents pushes the live parts of a target's page: its state, actions, progress and
// times, throughput chart, hosts and errors. Once the target is gone, it says so and ends.
func (s *Server) targetEvents(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	q := s.pageQuery(c, id)
	hostsAfter := c.QueryParam("hosts_after")
	return s.stream(c, "target", func(ctx context.Context) ([]sseEvent, error) {
		d, err := s.targetLive(ctx, id, q, hostsAfter)
		if errors.Is(err, store.ErrNotFound) {
			return []sseEvent{{"progress", targetGone()}}, errStreamEnd
		}
		if err != nil {
			return nil, err
		}
		return []sseEvent{
			{"state", stateBadge(d.T.Target)},
			{"actions", targetActions(d.T.Target, csrfToken(c))},
			{"progress", targetProgress(d.T, d.Now)},
			{"chart", chartPart(d.Chart, d.ChartErr)},
			{"hosts", targetHosts(d)},
			{"errors", targetErrors(d)},
		}, nil
	})
}

// workersEvents pushes the workers table as heartbeats come and workers go.
func (s *Server) workersEvents(c echo.Context) error {
	return s.stream(c, "workers", func(context.Context) ([]sseEvent, error) {
		return []sseEvent{{"workers", workersTable(s.workerList(), s.brokerDown(), timeRef{s.now()})}}, nil
	})
}

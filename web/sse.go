package web

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
)

// writeEvent writes one server-sent event whose data is html (one data: line per line).
func writeEvent(w io.Writer, event string, html []byte) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\n", event)
	sc := bufio.NewScanner(bytes.NewReader(html))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		b.WriteString("data: ")
		b.Write(sc.Bytes())
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// stream pushes the fragment that build returns as event every refresh interval until the
// client goes away or the server shuts down.
func (s *Server) stream(c echo.Context, event string, build func(ctx context.Context) templ.Component) error {
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
		var buf bytes.Buffer
		if err := build(ctx).Render(ctx, &buf); err != nil {
			s.Log.Warn("live update render failed", "event", event, "err", err)
			continue
		}
		extendDeadlines(c)
		if err := writeEvent(w, event, buf.Bytes()); err != nil {
			return nil // client gone
		}
		w.Flush()
	}
}

func (s *Server) overviewEvents(c echo.Context) error {
	return s.stream(c, "overview", func(ctx context.Context) templ.Component {
		return overviewBody(s.liveOverview(ctx))
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

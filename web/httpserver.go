package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// HTTPLimits are the dashboard http.Server's limits. A request must arrive whole within
// ReadTimeout (a body that drips in is cut off), and an answer must be written within
// WriteTimeout; long-lived responses (server-sent events, exports) move their own deadlines
// forward as they write, and requeue-all, which can outlast it, moves them before it answers.
type HTTPLimits struct {
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
}

// DefaultHTTPLimits are the limits of a dashboard whose re-crawl requests wait at most
// recrawlTimeout for a reply: the write timeout leaves room for that.
func DefaultHTTPLimits(recrawlTimeout time.Duration) HTTPLimits {
	return HTTPLimits{
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: max(time.Minute, recrawlTimeout+30*time.Second),
		IdleTimeout:  2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
}

// streamWriteGrace is how long a long-lived response may take to write one chunk.
const streamWriteGrace = 30 * time.Second

// NewHTTPServer returns the http.Server for the dashboard's handler h on addr, with limits l.
func NewHTTPServer(addr string, h http.Handler, l HTTPLimits) *http.Server {
	return &http.Server{
		Addr: addr, Handler: h,
		ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout, WriteTimeout: l.WriteTimeout,
		IdleTimeout: l.IdleTimeout, MaxHeaderBytes: l.MaxHeaderBytes,
	}
}

// extendDeadlines lets a long-lived response outlive the server's read and write timeouts: the
// read deadline is cleared (when it passes, net/http would cancel the request's context), and
// the write deadline is moved streamWriteGrace ahead, so a client that stops reading is still
// dropped. Call it before each chunk.
func extendDeadlines(c echo.Context) {
	rc := http.NewResponseController(c.Response())
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteGrace))
}

package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/service"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

//go:embed static
var staticFS embed.FS

// QueueStats reads queue depths from the broker (pipeline.Admin).
type QueueStats interface {
	QueueStats(ctx context.Context) ([]pipeline.QueueStat, error)
}

// Recrawler re-crawls one URL over RPC (recrawl.Service). Resending with the same requestID
// never causes a second fetch.
type Recrawler interface {
	Recrawl(ctx context.Context, requestID string, urlID int64) (message.RecrawlReply, error)
}

// DeadLetters lists, requeues and purges the broker's dead letters (deadletter.Service).
type DeadLetters interface {
	List(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetter, error)
	Requeue(ctx context.Context, ids []int64) (int, error)
	RequeueAll(ctx context.Context, f store.DeadLetterFilter) (deadletter.RequeueCounts, error)
	Purge(ctx context.Context, f store.DeadLetterFilter) (int, error)
}

// BrokerHealth reports whether the broker connection is up.
type BrokerHealth func() bool

// Server holds the dashboard's dependencies. Optional broker-backed parts (Queues, Recrawl,
// DeadLetters, Workers) may be nil; the pages then say what is unavailable.
type Server struct {
	Store       Store
	Log         *slog.Logger
	Checks      map[string]service.Check
	Auth        *Auth
	Queues      QueueStats
	Recrawl     Recrawler
	DeadLetters DeadLetters
	Workers     *Workers
	BrokerUp    BrokerHealth
	// RefreshInterval is how often live views (SSE) are pushed; default 2s.
	RefreshInterval time.Duration
	// RecrawlTimeout bounds one re-crawl RPC; default 15s.
	RecrawlTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Sessions stores logins; default Store when it implements Sessions. A password needs it.
	Sessions Sessions
	// AllowedHosts are the host names (without port) the dashboard answers to besides loopback
	// names. Without a password only those are served, against DNS rebinding; with a password
	// an empty list means any host name.
	AllowedHosts []string

	// Throttle limits guesses of the password and bearer token; zero means
	// DefaultThrottleLimits.
	Throttle ThrottleLimits
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client. Unset,
	// the client is the peer address and X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix

	allowedHosts []string // AllowedHosts in lower case
	throttle     *throttle
	crossOrigin  *http.CrossOriginProtection
	// sessionRecheck is how often a live stream checks that its session still exists.
	sessionRecheck time.Duration

	stopOnce sync.Once
	stop     chan struct{}
	initOnce sync.Once
	live     struct {
		mu   sync.Mutex
		at   time.Time
		data overviewData
	}
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.stop = make(chan struct{})
		if s.Auth == nil {
			s.Auth = NewAuth("")
		}
		if s.RefreshInterval <= 0 {
			s.RefreshInterval = 2 * time.Second
		}
		if s.RecrawlTimeout <= 0 {
			s.RecrawlTimeout = 15 * time.Second
		}
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		s.throttle = newThrottle(s.Throttle, s.now, s.Log)
		s.crossOrigin = http.NewCrossOriginProtection()
		if s.sessionRecheck <= 0 {
			s.sessionRecheck = 30 * time.Second
		}
		if s.Sessions == nil {
			s.Sessions, _ = s.Store.(Sessions)
		}
		for _, h := range s.AllowedHosts {
			if h = strings.TrimSuffix(strings.ToLower(strings.Trim(strings.TrimSpace(h), "[]")), "."); h != "" {
				s.allowedHosts = append(s.allowedHosts, h)
			}
		}
	})
}

// Shutdown ends the live streams (SSE), which would otherwise hold http.Server.Shutdown open.
// Register it with http.Server.RegisterOnShutdown. Safe to call more than once.
func (s *Server) Shutdown() {
	s.init()
	s.stopOnce.Do(func() { close(s.stop) })
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handler builds the echo application.
func (s *Server) Handler() *echo.Echo {
	s.init()
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = clientIP(s.TrustedProxies)
	s.routes(e)
	return e
}

// staticHandler serves embedded assets with a long cache lifetime.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// chrome builds the common page frame.
func (s *Server) chrome(c echo.Context, title, nav string) Chrome {
	return Chrome{Title: title, Nav: nav, CSRF: csrfToken(c), Authed: s.Auth.Enabled(), Health: s.health(c.Request().Context()), Now: s.now()}
}

// health checks the database and broker quickly, for the banner.
func (s *Server) health(ctx context.Context) Health {
	var h Health
	if check, ok := s.Checks["database"]; ok {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		h.DatabaseDown = check(cctx) != nil
		cancel()
	}
	if s.BrokerUp != nil {
		h.BrokerDown = !s.BrokerUp()
	}
	return h
}

// render writes comp after rendering it fully into a buffer, so a render error never sends half
// a page with status 200.
func render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return fmt.Errorf("web: render: %w", err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

func isHTMX(c echo.Context) bool { return c.Request().Header.Get("HX-Request") == "true" }

func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg, field := http.StatusInternalServerError, "internal error", ""
	var fe *fieldError
	var tfe *target.FieldError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &fe):
		status, msg, field = http.StatusBadRequest, fe.Error(), fe.field
	case errors.As(err, &tfe): // a rule only the store can check, such as a search language
		status, msg, field = http.StatusBadRequest, tfe.Error(), tfe.Field
	case errors.Is(err, store.ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	case errors.As(err, &he):
		status, msg = he.Code, fmt.Sprint(he.Message)
	case errors.Is(err, errBrokerUnavailable):
		status, msg = http.StatusServiceUnavailable, "message broker unavailable"
		s.Log.Warn("request failed: broker unavailable", "err", err, "path", c.Path())
	case store.Transient(err) || errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusServiceUnavailable, "database unavailable"
		s.Log.Warn("request failed: database unavailable", "err", err, "path", c.Path())
	default:
		s.Log.Error("request failed", "err", err, "path", c.Path())
	}
	path := c.Request().URL.Path
	if isAPI(path) || path == "/healthz" || path == "/readyz" {
		_ = c.JSON(status, apiError{Error: msg, Field: field})
		return
	}
	if isHTMX(c) {
		// htmx does not swap error responses by default; the client script shows them.
		_ = render(c, status, errorFragment(msg))
		return
	}
	if err := render(c, status, errorPage(s.chrome(c, statusText(status), ""), status, msg)); err != nil {
		_ = c.String(status, msg)
	}
}

// errBrokerUnavailable is returned when a broker-backed feature is not configured or down.
var errBrokerUnavailable = errors.New("web: message broker unavailable")

// describe turns a dependency failure into a sentence for the page.
func describe(err error, what string) string {
	switch {
	case errors.Is(err, errBrokerUnavailable):
		return "The message broker is unavailable, so " + what + " cannot be shown."
	case store.Transient(err) || errors.Is(err, context.DeadlineExceeded):
		return "The database is unreachable, so " + what + " cannot be shown."
	default:
		return "Could not load " + what + ": " + err.Error()
	}
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return fmt.Sprintf("Error %d", code)
}

func csrfHeaders(tok string) string {
	return `{"` + csrfHeader + `":"` + tok + `"}`
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// clientIP extracts the client address: the peer's, or, when the peer is one of the trusted
// proxies, the nearest X-Forwarded-For address that is not.
func clientIP(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

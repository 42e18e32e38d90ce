package web

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/store"
)

// Cookie and header names.
const (
	sessionCookie = "trawl_session"
	csrfCookie    = "trawl_csrf"
	csrfHeader    = "X-CSRF-Token"
	csrfFormField = "_csrf"
	csrfCtxKey    = "trawl.csrf"
)

// ContentSecurityPolicy allows scripts, styles and connections only from the dashboard itself:
// no inline scripts, no eval, no framing, no plugins.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Auth checks logins, session cookies and API bearer tokens. The zero value (no password)
// lets everyone in.
type Auth struct {
	password string
	key      []byte // HMAC key for the API token, derived from the password
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration
	// Secure marks cookies Secure (set when the dashboard is served over HTTPS).
	Secure bool

	fpOnce sync.Once
	fp     string
}

// NewAuth returns the Auth for password; an empty password disables authentication.
func NewAuth(password string) *Auth {
	a := &Auth{password: password, SessionTTL: 12 * time.Hour}
	if password != "" {
		m := hmac.New(sha256.New, []byte(password))
		m.Write([]byte("trawl dashboard session key v1"))
		a.key = m.Sum(nil)
	}
	return a
}

// Enabled reports whether a password is required.
func (a *Auth) Enabled() bool { return a != nil && a.password != "" }

// APIToken is the bearer token for /api/ derived from the password (the password itself is
// accepted too). It is what `dashboard api-token` prints, so scripts need not hold the password.
func (a *Auth) APIToken() string {
	if !a.Enabled() {
		return ""
	}
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte("api token v1"))
	return "trawl_" + hex.EncodeToString(m.Sum(nil))
}

// CheckPassword compares in constant time, lengths included: it compares SHA-256 digests, since
// subtle.ConstantTimeCompare returns at once for inputs of different lengths.
func (a *Auth) CheckPassword(p string) bool {
	return a.Enabled() && equalSecret(p, a.password)
}

func (a *Auth) checkBearer(tok string) bool {
	if !a.Enabled() {
		return true
	}
	return equalSecret(tok, a.APIToken()) || a.CheckPassword(tok)
}

// equalSecret reports whether a guess equals a secret without its time depending on where
// they differ or on their lengths.
func equalSecret(guess, secret string) bool {
	g, s := sha256.Sum256([]byte(guess)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(g[:], s[:]) == 1
}

// fingerprint identifies the password in stored sessions, so that sessions created under
// another password are not valid: changing the password ends every session. It is a slow
// key derivation (PBKDF2-SHA256), so a copy of the sessions table does not give the password
// away cheaply.
func (a *Auth) fingerprint() string {
	a.fpOnce.Do(func() {
		k, err := pbkdf2.Key(sha256.New, a.password, []byte("trawl dashboard session fingerprint v1"), 100_000, 32)
		if err != nil {
			panic("web: pbkdf2: " + err.Error()) // only for parameters FIPS mode forbids
		}
		a.fp = hex.EncodeToString(k)
	})
	return a.fp
}

// Sessions stores dashboard logins (*store.Store).
type Sessions interface {
	CreateDashboardSession(ctx context.Context, ds store.DashboardSession) error
	DashboardSession(ctx context.Context, id, fingerprint string) (store.DashboardSession, error)
	DeleteDashboardSession(ctx context.Context, id string) error
	DeleteDashboardSessions(ctx context.Context) (int64, error)
	PruneDashboardSessions(ctx context.Context) (int64, error)
}

// sessionLookupTimeout bounds the database lookup of a session cookie.
const sessionLookupTimeout = 5 * time.Second

// errNoSessions is returned when a password is set but no session store was given.
var errNoSessions = errors.New("web: no session store")

// sessionID is the stored id of a session token: its SHA-256, so the table never holds a
// usable cookie.
func sessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// sessionToken returns the request's session token, or "" when it has none of the right shape.
func sessionToken(r *http.Request) string {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || len(ck.Value) != 43 {
		return ""
	}
	return ck.Value
}

// validSession reports whether the request's session cookie names a live session created
// under the current password. An unreachable database is an error (503), never a yes.
func (s *Server) validSession(r *http.Request) (bool, error) {
	tok := sessionToken(r)
	if tok == "" {
		return false, nil
	}
	if s.Sessions == nil {
		return false, errNoSessions
	}
	ctx, cancel := context.WithTimeout(r.Context(), sessionLookupTimeout)
	defer cancel()
	_, err := s.Sessions.DashboardSession(ctx, sessionID(tok), s.Auth.fingerprint())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// startSession stores a new session for the request and sets its cookie.
func (s *Server) startSession(c echo.Context) error {
	if s.Sessions == nil {
		return errNoSessions
	}
	r := c.Request()
	ctx := r.Context()
	if n, err := s.Sessions.PruneDashboardSessions(ctx); err != nil {
		return err
	} else if n > 0 {
		s.Log.Debug("expired dashboard sessions deleted", "n", n)
	}
	tok := newToken()
	ua := r.UserAgent() // kept for operators looking at the table: clean, and short
	if len(ua) > 200 {
		ua = ua[:200]
	}
	ua = strings.ToValidUTF8(strings.ReplaceAll(ua, "\x00", ""), "")
	err := s.Sessions.CreateDashboardSession(ctx, store.DashboardSession{ID: sessionID(tok), PasswordFingerprint: s.Auth.fingerprint(),
		ExpiresAt: s.now().Add(s.Auth.SessionTTL), UserAgent: ua, RemoteAddr: c.RealIP()})
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.Auth.Secure, MaxAge: int(s.Auth.SessionTTL.Seconds())})
	return nil
}

func (s *Server) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: s.Auth.Secure, MaxAge: -1})
}

// endSession deletes the request's session, if it has one.
func (s *Server) endSession(c echo.Context) error {
	tok := sessionToken(c.Request())
	if tok == "" || s.Sessions == nil {
		return nil
	}
	return s.Sessions.DeleteDashboardSession(c.Request().Context(), sessionID(tok))
}

// endAllSessions deletes every session ("log out everywhere").
func (s *Server) endAllSessions(c echo.Context) (int64, error) {
	if s.Sessions == nil {
		return 0, nil
	}
	n, err := s.Sessions.DeleteDashboardSessions(c.Request().Context())
	if err != nil {
		return 0, err
	}
	s.Log.Info("dashboard sessions revoked everywhere", "n", n, "remote", c.RealIP())
	return n, nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

func isAPI(path string) bool { return path == "/api" || strings.HasPrefix(path, "/api/") }

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// securityHeaders sets the CSP and friends on every response.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		return next(c)
	}
}

// authenticate lets a request through when no password is set, when it carries a valid
// session cookie, or (for /api/) a valid bearer token. Otherwise the UI redirects to the login
// form and the API answers 401.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.Auth.Enabled() {
			return next(c)
		}
		r := c.Request()
		path := r.URL.Path
		if path == "/login" || path == "/healthz" || path == "/readyz" || strings.HasPrefix(path, "/static/") {
			return next(c)
		}
		if tok, ok := bearer(r); ok && isAPI(path) {
			ok, wait := s.throttle.check(c.RealIP(), "bearer token", func() bool { return s.Auth.checkBearer(tok) })
			switch {
			case wait > 0:
				return tooManyFailures(c, wait)
			case ok:
				return next(c)
			}
			return echo.NewHTTPError(http.StatusUnauthorized, "invalid bearer token")
		}
		if ok, err := s.validSession(r); err != nil {
			return err
		} else if ok {
			return next(c)
		}
		if isAPI(path) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="trawl"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "authentication required: send Authorization: Bearer <token>")
		}
		if r.Header.Get("HX-Request") == "true" {
			c.Response().Header().Set("HX-Redirect", "/login")
			return c.NoContent(http.StatusUnauthorized)
		}
		if r.Method != http.MethodGet {
			return echo.NewHTTPError(http.StatusUnauthorized, "log in first")
		}
		return c.Redirect(http.StatusSeeOther, "/login?next="+urlQueryEscape(r.URL.RequestURI()))
	}
}

// csrf protects state-changing requests in two layers.
//
// First, Go's http.CrossOriginProtection refuses any non-GET/HEAD/OPTIONS request that a
// browser marks as cross-origin (Sec-Fetch-Site, or an Origin header that does not match the
// Host). Requests with neither header do not come from a browser (curl, scripts), so no other
// site can have sent them through a visitor's browser: they pass without a token.
//
// Second, for requests from a browser, the double-submit token: a random token in an HttpOnly
// SameSite=Lax cookie, rendered into every page (meta tag, hx-headers, hidden form fields) and
// required back in the X-CSRF-Token header or the _csrf form field. API calls are exempt when
// they carry a bearer token, a JSON body or a method other than POST, none of which a
// cross-site page can send without a CORS preflight (which this server never grants).
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if err := s.crossOrigin.Check(r); err != nil {
			return echo.NewHTTPError(http.StatusForbidden, "cross-origin request refused: state changes must come from the dashboard's own pages")
		}
		tok := ""
		if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
			tok = ck.Value
		}
		if safeMethod(r.Method) {
			if tok == "" {
				tok = newToken()
				c.SetCookie(&http.Cookie{Name: csrfCookie, Value: tok, Path: "/", HttpOnly: true,
					SameSite: http.SameSiteLaxMode, Secure: s.Auth.Secure})
			}
			c.Set(csrfCtxKey, tok)
			return next(c)
		}
		if r.Header.Get("Sec-Fetch-Site") == "" && r.Header.Get("Origin") == "" {
			return next(c) // not from a browser
		}
		if isAPI(r.URL.Path) {
			if _, ok := bearer(r); ok {
				return next(c)
			}
			// PUT, PATCH and DELETE cannot be sent cross-site without a preflight either.
			if r.Method != http.MethodPost {
				return next(c)
			}
			if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.EqualFold(strings.TrimSpace(ct), "application/json") {
				return next(c)
			}
		}
		sent := r.Header.Get(csrfHeader)
		if sent == "" {
			sent = r.FormValue(csrfFormField)
		}
		if tok == "" || sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(tok)) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "missing or invalid CSRF token: reload the page and try again")
		}
		c.Set(csrfCtxKey, tok)
		return next(c)
	}
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func csrfToken(c echo.Context) string {
	v, _ := c.Get(csrfCtxKey).(string)
	return v
}

// hostAllowed reports whether a request's Host names this dashboard: a loopback name
// (localhost, *.localhost, 127.0.0.0/8, ::1) or one of allowed (host names, compared without
// the port and case). It is what stops DNS rebinding: a page on evil.example whose name is
// made to resolve to 127.0.0.1 still sends Host: evil.example.
func hostAllowed(host string, allowed []string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if ip, err := netip.ParseAddr(h); err == nil && ip.Unmap().IsLoopback() {
		return true
	}
	for _, a := range allowed {
		if h == a || strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

// checkHost refuses requests addressed to a host name the dashboard does not answer to: in
// open mode (no password) only loopback names and AllowedHosts; with a password, when
// AllowedHosts is set, those and loopback names. /healthz and /readyz answer whatever the Host.
func (s *Server) checkHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if s.Auth.Enabled() && len(s.allowedHosts) == 0 || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			return next(c)
		}
		if !hostAllowed(r.Host, s.allowedHosts) {
			s.Log.Warn("request for another host refused", "host", r.Host, "remote", c.RealIP())
			return echo.NewHTTPError(http.StatusMisdirectedRequest, fmt.Sprintf(
				"this dashboard does not answer to the host name %q: add it to TRAWL_DASHBOARD_ALLOWED_HOSTS (or use localhost)", r.Host))
		}
		return next(c)
	}
}

// retryAfter is d in whole seconds, rounded up, for a Retry-After header.
func retryAfter(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// tooManyFailures answers 429 to a client that must wait d before its credential is checked.
func tooManyFailures(c echo.Context, d time.Duration) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfter(d)))
	return echo.NewHTTPError(http.StatusTooManyRequests, fmt.Sprintf("too many failed attempts: try again in %d seconds", retryAfter(d)))
}

package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"
)

// safeNext keeps post-login redirects on this site. Browsers drop tabs and line breaks from a
// Location and read a backslash as a slash, so "/\t/evil.example/" would become the
// protocol-relative "//evil.example/": control characters are removed first, and what is left
// must be a path on this site, or the answer is "/".
func safeNext(next string) string {
	next = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || unicode.IsControl(r) {
			return -1
		}
		return r
	}, next)
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

func (s *Server) loginForm(c echo.Context) error {
	if !s.Auth.Enabled() {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	ch := s.chrome(c, "Log in", "")
	ch.Authed = false
	return render(c, http.StatusOK, loginPage(ch, safeNext(c.QueryParam("next")), ""))
}

func (s *Server) login(c echo.Context) error {
	if !s.Auth.Enabled() {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	next := safeNext(c.FormValue("next"))
	ip := c.RealIP()
	refuse := func(status int, msg string) error {
		ch := s.chrome(c, "Log in", "")
		ch.Authed = false
		return render(c, status, loginPage(ch, next, msg))
	}
	password := c.FormValue("password")
	ok, wait := s.throttle.check(ip, "password", func() bool { return s.Auth.CheckPassword(password) })
	if wait > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfter(wait)))
		return refuse(http.StatusTooManyRequests, fmt.Sprintf("Too many wrong passwords from your address. Try again in %d seconds.", retryAfter(wait)))
	}
	if !ok {
		s.Log.Warn("dashboard login failed", "remote", ip)
		return refuse(http.StatusUnauthorized, "Wrong password.")
	}
	if err := s.startSession(c); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, next)
}

// logout ends this browser's session on the server: a copy of the cookie no longer works.
func (s *Server) logout(c echo.Context) error {
	if err := s.endSession(c); err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.Redirect(http.StatusSeeOther, "/login")
}

// logoutAll ends every session of the dashboard, in every browser.
func (s *Server) logoutAll(c echo.Context) error {
	if _, err := s.endAllSessions(c); err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.Redirect(http.StatusSeeOther, "/login")
}

// apiRevokeSessions is POST /api/sessions/revoke-all: "log out everywhere" for scripts.
func (s *Server) apiRevokeSessions(c echo.Context) error {
	n, err := s.endAllSessions(c)
	if err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.JSON(http.StatusOK, map[string]int64{"revoked": n})
}

package web

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// login posts the password from c's login form and returns the answer.
func (c *client) login(password, next string) *http.Response {
	c.t.Helper()
	c.get("/login")
	resp, _ := c.postForm("/login", url.Values{"password": {password}, csrfFormField: {c.csrf}, "next": {next}})
	return resp
}

// TestLoginNextStaysOnSite: after a correct login the redirect never leaves the site, also when
// next hides "//" behind control characters that browsers remove from a Location.
func TestLoginNextStaysOnSite(t *testing.T) {
	t.Parallel()
	const pw = "correct horse"
	ts, _ := newTestServer(t, pw, nil)
	for _, tc := range []struct{ next, want string }{
		{"/\t/evil.example/", "/"},
		{"/\n/evil.example/", "/"},
		{"/\r\n/evil.example/", "/"},
		{"\t//evil.example/", "/"},
		{"/\x7f/evil.example/", "/"},
		{"//evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"https://evil.example/", "/"},
		{"evil.example", "/"},
		{"", "/"},
		{"/targets?state=done", "/targets?state=done"},
		{"/targets/\t7", "/targets/7"},
	} {
		c := newClient(t, ts.URL)
		resp := c.login(pw, tc.next)
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != tc.want {
			t.Errorf("next %q: %d → %q, want 303 → %q", tc.next, resp.StatusCode, got, tc.want)
		}
	}
	// The login form carries the cleaned next from its query.
	c := newClient(t, ts.URL)
	_, body := c.get("/login?next=%2F%09%2Fevil.example%2F")
	if want := `name="next" value="/"`; !strings.Contains(body, want) {
		t.Errorf("login form for a hostile next lacks %s", want)
	}
}

// TestAPITargetActionsAreLogged: pause, resume, cancel, re-crawl and delete through the API log
// the same line as through the UI.
func TestAPITargetActionsAreLogged(t *testing.T) {
	t.Parallel()
	var logs testenv.SyncBuffer
	ts, st := newTestServer(t, "", func(s *Server) { s.Log = slog.New(slog.NewJSONHandler(&logs, nil)) })
	c := newClient(t, ts.URL)
	tg, err := st.CreateTarget(t.Context(), target.Spec{Name: "x", SeedURL: "http://example.com/", Scope: "host", MaxDepth: 1, MaxPages: 10, PerHostRPS: 1, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/targets/" + i64(tg.ID)
	for _, a := range []string{"pause", "resume", "cancel", "recrawl"} {
		if resp, body := c.do(http.MethodPost, path+"/"+a, "application/json", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s = %d %s", a, resp.StatusCode, body)
		}
	}
	if resp, _ := c.do(http.MethodDelete, path, "", nil); resp.StatusCode >= 300 {
		t.Fatalf("delete = %d", resp.StatusCode)
	}
	type line struct {
		Msg    string `json:"msg"`
		Target int64  `json:"target"`
		Action string `json:"action"`
		Via    string `json:"via"`
	}
	var got []line
	for l := range strings.Lines(logs.String()) {
		var ln line
		if err := json.Unmarshal([]byte(l), &ln); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if ln.Msg == "target action" {
			got = append(got, ln)
		}
	}
	var want []line
	for _, a := range []string{"pause", "resume", "cancel", "recrawl", "delete"} {
		want = append(want, line{Msg: "target action", Target: tg.ID, Action: a, Via: "api"})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logged actions (-want +got):\n%s", diff)
	}
}

// getHost asks ts for path with the given Host header.
func getHost(t *testing.T, base, host, path string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestHostCheck: without a password the dashboard answers only to loopback names and
// AllowedHosts (DNS rebinding: a hostile page whose name resolves to 127.0.0.1 sends its own
// name as Host); with a password any name reaches the login unless AllowedHosts is set.
func TestHostCheck(t *testing.T) {
	t.Parallel()
	open, _ := newTestServer(t, "", nil)
	listed, _ := newTestServer(t, "", func(s *Server) { s.AllowedHosts = []string{"Dash.Internal", " [fd00::1] "} })
	locked, _ := newTestServer(t, "pw", nil)
	lockedListed, _ := newTestServer(t, "pw", func(s *Server) { s.AllowedHosts = []string{"dash.internal"} })
	for _, tc := range []struct {
		name, base, host, path string
		want                   int
	}{
		{"open, rebinding name", open.URL, "evil.example", "/", http.StatusMisdirectedRequest},
		{"open, rebinding name with port", open.URL, "evil.example:8080", "/api/targets", http.StatusMisdirectedRequest},
		{"open, LAN address", open.URL, "192.168.1.5:8080", "/", http.StatusMisdirectedRequest},
		{"open, localhost", open.URL, "localhost:8080", "/targets", http.StatusOK},
		{"open, LOCALHOST.", open.URL, "LOCALHOST.", "/targets", http.StatusOK},
		{"open, app.localhost", open.URL, "app.localhost", "/targets", http.StatusOK},
		{"open, 127.0.0.2", open.URL, "127.0.0.2", "/targets", http.StatusOK},
		{"open, ::1", open.URL, "[::1]:8080", "/targets", http.StatusOK},
		{"open, healthz", open.URL, "evil.example", "/healthz", http.StatusOK},
		{"open, allowed name", listed.URL, "dash.internal:8080", "/targets", http.StatusOK},
		{"open, allowed address", listed.URL, "[fd00::1]:8080", "/targets", http.StatusOK},
		{"open, other name", listed.URL, "dash.internal.evil.example", "/targets", http.StatusMisdirectedRequest},
		{"password, any name", locked.URL, "evil.example", "/targets", http.StatusSeeOther},
		{"password and list, other name", lockedListed.URL, "evil.example", "/targets", http.StatusMisdirectedRequest},
		{"password and list, allowed name", lockedListed.URL, "dash.internal", "/targets", http.StatusSeeOther},
	} {
		if got := getHost(t, tc.base, tc.host, tc.path); got != tc.want {
			t.Errorf("%s: Host %s %s = %d, want %d", tc.name, tc.host, tc.path, got, tc.want)
		}
	}
}

// sessionCookieOf returns the session cookie c holds for base.
func (c *client) sessionCookie() *http.Cookie {
	u, _ := url.Parse(c.base)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			return ck
		}
	}
	c.t.Fatal("no session cookie")
	return nil
}

// withCookie returns a client that holds a copy of ck, as a thief would.
func withCookie(t *testing.T, base string, ck *http.Cookie) *client {
	c := newClient(t, base)
	u, _ := url.Parse(base)
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value}})
	return c
}

// loggedIn reports whether c's session is accepted, on a page and in the API.
func loggedIn(t *testing.T, c *client) bool {
	t.Helper()
	page, _ := c.get("/targets")
	api, _ := c.get("/api/targets")
	if (page.StatusCode == http.StatusOK) != (api.StatusCode == http.StatusOK) {
		t.Fatalf("page %d but API %d", page.StatusCode, api.StatusCode)
	}
	if page.StatusCode != http.StatusOK && page.StatusCode != http.StatusSeeOther {
		t.Fatalf("page = %d, want 200 or a redirect to the login form", page.StatusCode)
	}
	return page.StatusCode == http.StatusOK
}

// TestSessionsAreRevocable: logging out ends the session on the server, so a copied cookie
// stops working; "log out everywhere" (UI and API) ends every session; a new password ends
// every session made under the old one.
func TestSessionsAreRevocable(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	ts := serve(t, st, "pw-1", nil)

	// Logout.
	a := newClient(t, ts.URL)
	if resp := a.login("pw-1", "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login = %d", resp.StatusCode)
	}
	thief := withCookie(t, ts.URL, a.sessionCookie())
	if !loggedIn(t, thief) {
		t.Fatal("a copied cookie does not work before logout")
	}
	if resp, _ := a.postForm("/logout", url.Values{csrfFormField: {a.csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	if loggedIn(t, thief) {
		t.Error("a copied cookie still works after logout")
	}
	if loggedIn(t, a) {
		t.Error("logged in after logout")
	}

	// Log out everywhere, in the UI.
	b, c := newClient(t, ts.URL), newClient(t, ts.URL)
	b.login("pw-1", "/")
	c.login("pw-1", "/")
	_, page := b.get("/targets")
	if !strings.Contains(page, `action="/logout-all"`) {
		t.Error("no log-out-everywhere button on the page")
	}
	if resp, _ := b.postForm("/logout-all", url.Values{csrfFormField: {b.csrf}}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("log out everywhere = %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if loggedIn(t, b) || loggedIn(t, c) {
		t.Error("a session survived logging out everywhere")
	}

	// Log out everywhere, in the API with a bearer token.
	d, e := newClient(t, ts.URL), newClient(t, ts.URL)
	d.login("pw-1", "/")
	e.login("pw-1", "/")
	resp, body := newClient(t, ts.URL).do(http.MethodPost, "/api/sessions/revoke-all", "", nil, "Authorization", "Bearer "+NewAuth("pw-1").APIToken())
	if resp.StatusCode != http.StatusOK || body != "{\"revoked\":2}\n" {
		t.Errorf("API revoke-all = %d %s, want 200 {\"revoked\":2}", resp.StatusCode, body)
	}
	if loggedIn(t, d) || loggedIn(t, e) {
		t.Error("a session survived the API's revoke-all")
	}

	// A new password (a restart with another TRAWL_DASHBOARD_PASSWORD) ends every session.
	f := newClient(t, ts.URL)
	f.login("pw-1", "/")
	ck := f.sessionCookie()
	again := serve(t, st, "pw-1", nil)
	if !loggedIn(t, withCookie(t, again.URL, ck)) {
		t.Error("a restart with the same password ended the session")
	}
	changed := serve(t, st, "pw-2", nil)
	if loggedIn(t, withCookie(t, changed.URL, ck)) {
		t.Error("a session made under the old password works under the new one")
	}
	g := newClient(t, changed.URL)
	g.login("pw-2", "/")
	if !loggedIn(t, g) {
		t.Error("cannot log in with the new password")
	}
}

// TestSessionCheckWithDatabaseDown: with the database gone a session cannot be checked: the
// answer is 503, neither a way in nor a 500.
func TestSessionCheckWithDatabaseDown(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.Store(t)
	u, _ := url.Parse(dsn)
	px := newProxy(t, u.Host)
	u.Host = px.ln.Addr().String()
	st, err := store.Open(t.Context(), u.String(), 4, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := serve(t, st, "pw", nil)
	c := newClient(t, ts.URL)
	c.login("pw", "/")
	if !loggedIn(t, c) {
		t.Fatal("not logged in")
	}
	px.cut()
	for _, p := range []string{"/targets", "/api/targets", "/"} {
		if resp, body := c.get(p); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s with the database down = %d, want 503:\n%.300s", p, resp.StatusCode, body)
		}
	}
	// A bearer token needs no database.
	if resp, _ := newClient(t, ts.URL).get("/api/workers", "Authorization", "Bearer "+NewAuth("pw").APIToken()); resp.StatusCode != http.StatusOK {
		t.Errorf("bearer with the database down = %d, want 200", resp.StatusCode)
	}
}

// TestRevokedSessionEndsLiveStream: an overview stream opened with a session ends once the
// session is revoked.
func TestRevokedSessionEndsLiveStream(t *testing.T) {
	t.Parallel()
	ts, _ := newTestServer(t, "pw", func(s *Server) { s.sessionRecheck = 100 * time.Millisecond })
	c := newClient(t, ts.URL)
	c.login("pw", "/")
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events/overview", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream = %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "event: overview") {
	}
	if r, body := newClient(t, ts.URL).do(http.MethodPost, "/api/sessions/revoke-all", "", nil, "Authorization", "Bearer "+NewAuth("pw").APIToken()); r.StatusCode != http.StatusOK {
		t.Fatalf("revoke-all = %d %s", r.StatusCode, body)
	}
	for sc.Scan() {
	}
	if ctx.Err() != nil {
		t.Error("the stream of a revoked session was still open after 15 s")
	}
}

func TestEqualSecret(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		guess, secret string
		want          bool
	}{
		{"pw", "pw", true},
		{"pw", "pw2", false},
		{"", "pw", false},
		{"pw\x00", "pw", false},
		{"PW", "pw", false},
	} {
		if got := equalSecret(tt.guess, tt.secret); got != tt.want {
			t.Errorf("equalSecret(%q, %q) = %v, want %v", tt.guess, tt.secret, got, tt.want)
		}
	}
}

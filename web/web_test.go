package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/service"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// newTestServer serves a dashboard on a real, migrated test database.
func newTestServer(t *testing.T, password string, mut func(*Server)) (*httptest.Server, *store.Store) {
	t.Helper()
	st, _ := testenv.Store(t)
	return serve(t, st, password, mut), st
}

func serve(t *testing.T, st Store, password string, mut func(*Server)) *httptest.Server {
	t.Helper()
	srv := &Server{Store: st, Log: testenv.Logger(t), Auth: NewAuth(password), RefreshInterval: 50 * time.Millisecond}
	if s, ok := st.(*store.Store); ok {
		srv.Checks = map[string]service.Check{"database": s.Ping}
	}
	if mut != nil {
		mut(srv)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Config.RegisterOnShutdown(srv.Shutdown)
	ts.Start()
	t.Cleanup(func() { srv.Shutdown(); ts.Close() })
	return ts
}

// client keeps cookies, does not follow redirects, and remembers the page's CSRF token.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)

func (c *client) do(method, path, ctype string, body io.Reader, hdr ...string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfMeta.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp, string(b)
}

func (c *client) get(path string, hdr ...string) (*http.Response, string) {
	return c.do(http.MethodGet, path, "", nil, hdr...)
}

func (c *client) postForm(path string, v url.Values, hdr ...string) (*http.Response, string) {
	return c.do(http.MethodPost, path, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()), hdr...)
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	ts, _ := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	for _, p := range []string{"/", "/targets", "/search?q=x", "/retries", "/workers", "/static/app.css", "/api/targets", "/nope"} {
		resp, _ := c.get(p)
		csp := resp.Header.Get("Content-Security-Policy")
		if csp != ContentSecurityPolicy {
			t.Errorf("%s: CSP = %q", p, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: missing nosniff/frame headers: %v", p, resp.Header)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %s", ContentSecurityPolicy)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	c.get("/targets")
	if c.csrf == "" {
		t.Fatal("no CSRF token in the page")
	}
	form := url.Values{"seed_url": {"http://example.com/"}, "scope": {"host"}}

	// From a browser (which says where a request comes from): no token, a wrong token, and a
	// token without its cookie are refused, and so is a cross-site request even with a token.
	sameOrigin := []string{"Sec-Fetch-Site", "same-origin", "Origin", ts.URL}
	if resp, _ := c.postForm("/targets", form, sameOrigin...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST without token = %d, want 403", resp.StatusCode)
	}
	if resp, _ := c.postForm("/targets", form, append(sameOrigin, csrfHeader, strings.Repeat("x", 43))...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with a wrong token = %d, want 403", resp.StatusCode)
	}
	other := newClient(t, ts.URL)
	if resp, _ := other.postForm("/targets", form, append(sameOrigin, csrfHeader, c.csrf)...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with a token but not its cookie = %d, want 403", resp.StatusCode)
	}
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example", "Content-Type", "application/json"},
	} {
		if resp, _ := c.postForm("/targets", form, append(hdr, csrfHeader, c.csrf)...); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST %v with a token = %d, want 403", hdr, resp.StatusCode)
		}
		if resp, _ := c.do(http.MethodPost, "/api/targets", "application/json", strings.NewReader(`{"seed_url":"http://example.net/"}`), hdr...); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site JSON API POST %v = %d, want 403", hdr, resp.StatusCode)
		}
	}
	// A form-encoded API call without token is refused too (a cross-site form could send it).
	if resp, _ := c.postForm("/api/targets", form, sameOrigin...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("form POST to the API without token = %d, want 403", resp.StatusCode)
	}
	if ts, err := st.Targets(t.Context(), 10); err != nil || len(ts) != 0 {
		t.Fatalf("refused requests stored targets: %v %v", ts, err)
	}

	// The token in the form field, or in the htmx header, is accepted.
	withField := url.Values{"seed_url": {"http://example.com/"}, "scope": {"host"}, csrfFormField: {c.csrf}}
	resp, _ := c.postForm("/targets", withField)
	if resp.StatusCode != http.StatusSeeOther || !regexp.MustCompile(`^/targets/\d+$`).MatchString(resp.Header.Get("Location")) {
		t.Errorf("POST with token field = %d → %q, want 303 to the target", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = c.postForm("/targets", form, csrfHeader, c.csrf, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("HX-Redirect"), "/targets/") {
		t.Errorf("htmx POST with token header = %d HX-Redirect %q", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
	// A JSON API call needs no token: browsers cannot send it cross-site without a preflight.
	resp, body := c.do(http.MethodPost, "/api/targets", "application/json", strings.NewReader(`{"seed_url":"http://example.org/"}`))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("JSON API POST = %d, want 201", resp.StatusCode)
	}
	var created TargetJSON
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	// A script (no Sec-Fetch-Site, no Origin: not a browser) needs no token, even for a
	// body-less POST (curl -X POST).
	curl := newClient(t, ts.URL)
	if resp, body := curl.do(http.MethodPost, "/api/targets/"+i64(created.ID)+"/pause", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("body-less API POST from a script = %d %s, want 200", resp.StatusCode, body)
	}
	// DELETE cannot be sent cross-site without a preflight: no token needed.
	if resp, _ := c.do(http.MethodDelete, "/api/targets/"+i64(created.ID), "", nil, sameOrigin...); resp.StatusCode != http.StatusAccepted {
		t.Errorf("API DELETE = %d, want 202", resp.StatusCode)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	const pw = "correct horse"
	ts, _ := newTestServer(t, pw, nil)
	c := newClient(t, ts.URL)

	resp, _ := c.get("/targets?state=done")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Ftargets%3Fstate%3Ddone" {
		t.Fatalf("anonymous page = %d → %q, want a redirect to the login form", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := c.get("/api/targets"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous API = %d, want 401", resp.StatusCode)
	}
	if resp, _ := c.get("/static/app.css"); resp.StatusCode != http.StatusOK {
		t.Errorf("static assets need no login, got %d", resp.StatusCode)
	}
	if resp, _ := c.get("/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz needs no login, got %d", resp.StatusCode)
	}

	// Bearer tokens: the derived token and the password work, anything else does not.
	tok := NewAuth(pw).APIToken()
	for _, tc := range []struct {
		bearer string
		want   int
	}{{tok, 200}, {pw, 200}, {"wrong", 401}, {tok + "x", 401}} {
		if resp, _ := c.get("/api/targets", "Authorization", "Bearer "+tc.bearer); resp.StatusCode != tc.want {
			t.Errorf("bearer %q = %d, want %d", tc.bearer, resp.StatusCode, tc.want)
		}
	}

	c.get("/login")
	resp, body := c.postForm("/login", url.Values{"password": {"nope"}, csrfFormField: {c.csrf}, "next": {"/targets"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong password") {
		t.Errorf("wrong password = %d", resp.StatusCode)
	}
	resp, _ = c.postForm("/login", url.Values{"password": {pw}, csrfFormField: {c.csrf}, "next": {"//evil.example/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("login = %d → %q, want 303 to / (never off-site)", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie = %+v, want HttpOnly SameSite=Lax", session)
	}
	if resp, _ := c.get("/targets"); resp.StatusCode != http.StatusOK {
		t.Errorf("logged-in page = %d", resp.StatusCode)
	}

	// A made-up session token is refused.
	forged := newClient(t, ts.URL)
	u, _ := url.Parse(ts.URL)
	forged.hc.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: newToken()}})
	if resp, _ := forged.get("/targets"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("forged session = %d, want a redirect to the login form", resp.StatusCode)
	}
}

func TestAddTargetFormValidation(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	c.get("/targets")
	bad := []struct {
		name, field string
		v           url.Values
	}{
		{"scheme", "seed_url", url.Values{"seed_url": {"ftp://example.com/<b>x</b>"}, "max_pages": {"77"}}},
		{"depth", "max_depth", url.Values{"seed_url": {"http://example.com/"}, "max_depth": {"deep"}}},
		{"rps", "per_host_rps", url.Values{"seed_url": {"http://example.com/"}, "per_host_rps": {"-3"}}},
		{"rps tiny", "per_host_rps", url.Values{"seed_url": {"http://example.com/"}, "per_host_rps": {"0.0000001"}}},
		{"rps NaN", "per_host_rps", url.Values{"seed_url": {"http://example.com/"}, "per_host_rps": {"NaN"}}},
		{"interval", "recrawl_interval", url.Values{"seed_url": {"http://example.com/"}, "recrawl_interval": {"sometimes"}}},
		{"include", "include", url.Values{"seed_url": {"http://example.com/"}, "include": {"docs/(<b>"}, "exclude": {`\.pdf$`}}},
		{"exclude", "exclude", url.Values{"seed_url": {"http://example.com/"}, "include": {"^http://example\\.com/"}, "exclude": {"[z-a]"}}},
		{"attempts", "max_attempts", url.Values{"seed_url": {"http://example.com/"}, "max_attempts": {"0"}}},
		{"sitemaps", "sitemaps", url.Values{"seed_url": {"http://example.com/"}, "sitemaps": {"maybe"}}},
	}
	for _, tc := range bad {
		tc.v.Set(csrfFormField, c.csrf)
		resp, body := c.postForm("/targets", tc.v, "HX-Request", "true")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="`+tc.field+`-error"`) {
			t.Errorf("%s: status %d, no inline error for %s in:\n%s", tc.name, resp.StatusCode, tc.field, body)
		}
		for k, vs := range tc.v {
			if k == csrfFormField || k == "sitemaps" {
				continue
			}
			if want := `value="` + htmlEscape(vs[0]) + `"`; !strings.Contains(body, want) {
				t.Errorf("%s: the form lost %s (want %s)", tc.name, k, want)
			}
		}
		// Without JS: the whole page, 422, same inline error.
		resp, body = c.postForm("/targets", tc.v)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="`+tc.field+`-error"`) {
			t.Errorf("%s (no JS): status %d", tc.name, resp.StatusCode)
		}
	}
	if ts, _ := st.Targets(t.Context(), 10); len(ts) != 0 {
		t.Errorf("invalid forms stored %d targets", len(ts))
	}
}

// TestAddTargetFormCrawlOptions adds targets through the form with the crawl options the API
// has (sitemaps, include/exclude regexes, scope kinds, max attempts) and checks what was stored.
func TestAddTargetFormCrawlOptions(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	_, page := c.get("/targets")
	for _, id := range []string{`id="f-sitemaps"`, `id="f-include"`, `id="f-exclude"`, `id="f-max_attempts"`, `value="domain"`, `value="prefix"`} {
		if !strings.Contains(page, id) {
			t.Errorf("the add-target form has no %s", id)
		}
	}
	if !regexp.MustCompile(`id="f-sitemaps"[^>]*checked`).MatchString(page) {
		t.Errorf("sitemaps are not on by default in the form")
	}
	type want struct {
		Scope, Prefix, Include, Exclude string
		Sitemaps                        bool
		MaxAttempts                     int
	}
	for _, tc := range []struct {
		name string
		v    url.Values
		want want
	}{
		// The browser sends the hidden "off" then the checked box's "on".
		{"checked", url.Values{"seed_url": {"http://a.example/"}, "sitemaps": {"off", "on"}, "include": {`^http://a\.example/docs/`}, "exclude": {`\.pdf$`}, "max_attempts": {"7"}},
			want{Scope: "host", Include: `^http://a\.example/docs/`, Exclude: `\.pdf$`, Sitemaps: true, MaxAttempts: 7}},
		{"unchecked", url.Values{"seed_url": {"http://b.example/"}, "sitemaps": {"off"}, "scope": {"domain"}},
			want{Scope: "domain", MaxAttempts: target.DefaultMaxAttempts}},
		{"absent", url.Values{"seed_url": {"http://c.example/docs/x"}, "scope": {"prefix"}, "scope_prefix": {"http://c.example/docs/"}},
			want{Scope: "prefix", Prefix: "http://c.example/docs/", Sitemaps: true, MaxAttempts: target.DefaultMaxAttempts}},
	} {
		tc.v.Set(csrfFormField, c.csrf)
		resp, _ := c.postForm("/targets", tc.v)
		m := targetPathRe.FindStringSubmatch(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || m == nil {
			t.Errorf("%s: status %d → %q, want a redirect to the new target", tc.name, resp.StatusCode, resp.Header.Get("Location"))
			continue
		}
		id, _ := strconv.ParseInt(m[1], 10, 64)
		tg, err := st.Target(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		got := want{Scope: tg.Scope, Prefix: tg.ScopePrefix, Include: tg.Include, Exclude: tg.Exclude, Sitemaps: tg.Sitemaps, MaxAttempts: tg.MaxAttempts}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: stored target (-want +got):\n%s", tc.name, diff)
		}
	}
	// A bad regex keeps an unchecked sitemaps box unchecked.
	resp, body := c.postForm("/targets", url.Values{csrfFormField: {c.csrf}, "seed_url": {"http://d.example/"}, "sitemaps": {"off"}, "include": {"("}}, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="include-error"`) || regexp.MustCompile(`id="f-sitemaps"[^>]*checked`).MatchString(body) {
		t.Errorf("bad include with sitemaps off: status %d, body:\n%s", resp.StatusCode, body)
	}
}

var targetPathRe = regexp.MustCompile(`^/targets/(\d+)$`)

func htmlEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&#34;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestTargetActionsAndDeleteConfirmation(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	tg, err := st.CreateTarget(t.Context(), target.Spec{Name: "x", SeedURL: "http://example.com/", Scope: "host", MaxDepth: 1, MaxPages: 10, PerHostRPS: 1, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	path := "/targets/" + i64(tg.ID)
	_, body := c.get(path)
	if !strings.Contains(body, `value="pause"`) {
		t.Fatalf("no pause button on a running target")
	}
	if _, js := c.get("/api" + path); !strings.Contains(js, `"state":"running"`) || !strings.Contains(js, `"pages_per_sec":0`) || !strings.Contains(js, `"pending":1`) {
		t.Errorf("GET /api%s = %s, want the live figures", path, js)
	}
	if !strings.Contains(body, `sse-connect="/events`+path+`"`) || !strings.Contains(body, `<div id="target-progress" sse-swap="progress">`) || !strings.Contains(body, `id="stat-fetched"`) {
		t.Errorf("a running target's progress does not refresh itself:\n%s", body)
	}
	for _, step := range []struct{ action, state string }{{"pause", "paused"}, {"resume", "active"}, {"cancel", "cancelled"}} {
		resp, _ := c.postForm(path+"/"+step.action, url.Values{csrfFormField: {c.csrf}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s = %d", step.action, resp.StatusCode)
		}
		got, _ := st.Target(t.Context(), tg.ID)
		if got.State != step.state {
			t.Fatalf("after %s: state %s, want %s", step.action, got.State, step.state)
		}
	}
	if resp, _ := c.postForm(path+"/resume", url.Values{csrfFormField: {c.csrf}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("resume a cancelled target = %d, want 409", resp.StatusCode)
	}
	// A cancelled target's page still streams (a re-crawl makes it run again), and shows its
	// finish, without JavaScript too.
	if _, page := c.get(path); !strings.Contains(page, `sse-connect="/events`+path+`"`) || !strings.Contains(page, `id="time-finished"`) {
		t.Errorf("a cancelled target's page does not show its finish or is not live:\n%s", page)
	}
	// Delete asks first; only the confirmation's POST deletes.
	resp, body := c.get(path + "/delete")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "cannot be undone") {
		t.Fatalf("delete confirmation = %d", resp.StatusCode)
	}
	if _, err := st.Target(t.Context(), tg.ID); err != nil {
		t.Fatalf("asking deleted the target: %v", err)
	}
	if resp, _ := c.postForm(path+"/delete", url.Values{csrfFormField: {c.csrf}}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/targets" {
		t.Fatalf("delete = %d → %q, want 303 to the targets", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The target is deleting until a processor's deleter has removed it: shown so, without
	// actions, and asking to delete it again says so.
	if got, err := st.Target(t.Context(), tg.ID); err != nil || got.State != store.TargetDeleting {
		t.Fatalf("after delete: %+v, %v; want the target deleting", got, err)
	}
	_, body = c.get("/targets?state=deleting")
	if !strings.Contains(body, `class="badge state-deleting"`) || !strings.Contains(body, "Being deleted") || strings.Contains(body, "Delete…") {
		t.Errorf("targets list with a deleting target:\n%s", body)
	}
	if _, body := c.get(path + "/delete"); !strings.Contains(body, `id="already-deleting"`) || strings.Contains(body, "confirm-delete") {
		t.Errorf("delete confirmation of a deleting target:\n%s", body)
	}
	for done := false; !done; {
		step, err := st.PurgeTarget(t.Context(), tg.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		done = step.Done
	}
	if resp, _ := c.get(path); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleted target page = %d, want 404", resp.StatusCode)
	}
}

// TestBrokerDownIsShownNotFailed: with the broker down, pages answer 200 and say so; the
// broker-backed API answers 503 with a JSON error.
func TestBrokerDownIsShownNotFailed(t *testing.T) {
	t.Parallel()
	ts, _ := newTestServer(t, "", func(s *Server) { s.BrokerUp = func() bool { return false } })
	c := newClient(t, ts.URL)
	for _, p := range []string{"/", "/retries", "/workers"} {
		resp, body := c.get(p)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "broker") || !strings.Contains(body, "unreachable") && !strings.Contains(body, "unavailable") {
			t.Errorf("%s = %d, want 200 saying the broker is unreachable", p, resp.StatusCode)
		}
	}
	for _, p := range []string{"/api/queues", "/api/dead-letters"} {
		resp, body := c.get(p)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) {
			t.Errorf("%s = %d %s, want 503 JSON", p, resp.StatusCode, body)
		}
	}
	resp, body := c.do(http.MethodPost, "/api/pages/1/recrawl", "application/json", strings.NewReader(`{}`))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "broker") {
		t.Errorf("recrawl with the broker down = %d %s", resp.StatusCode, body)
	}
}

// proxy forwards TCP to Postgres until cut, to take the database away from a running server.
type proxy struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
	down  bool
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, to string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, to: to}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", to)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(u, c); u.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, u); c.Close() })
		}
	})
	t.Cleanup(func() { p.ln.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestDatabaseDownIsShownNotFailed cuts the database connection under a running dashboard:
// pages say the database is unreachable with 503 instead of a bare 500, and the API answers
// 503 JSON.
func TestDatabaseDownIsShownNotFailed(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.Store(t)
	u, _ := url.Parse(dsn)
	px := newProxy(t, u.Host)
	u.Host = px.ln.Addr().String()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	st, err := store.Open(ctx, u.String(), 4, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := serve(t, st, "", nil)
	c := newClient(t, ts.URL)
	if resp, _ := c.get("/targets"); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the cut: %d", resp.StatusCode)
	}
	px.cut()
	resp, body := c.get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "database is unreachable") {
		t.Errorf("overview with the database down = %d, want 200 saying so:\n%s", resp.StatusCode, body)
	}
	resp, body = c.get("/targets")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "database unavailable") {
		t.Errorf("targets with the database down = %d", resp.StatusCode)
	}
	resp, body = c.get("/api/targets")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"error":"database unavailable"`) {
		t.Errorf("API with the database down = %d %s", resp.StatusCode, body)
	}
}

func TestWorkersRegistryDropsSilentWorkers(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := NewWorkers(func() time.Time { return now })
	hb := func(id string, interval time.Duration) message.Heartbeat {
		return message.Heartbeat{WorkerID: id, Kind: "crawler", IntervalMS: interval.Milliseconds()}
	}
	w.Observe(hb("a", time.Second))
	w.Observe(hb("b", 10*time.Second))
	w.Observe(hb("c", time.Second))
	if n := len(w.List()); n != 3 {
		t.Fatalf("%d workers, want 3", n)
	}
	w.Observe(hb("c", 0)) // goodbye
	now = now.Add(3 * time.Second)
	if got := ids(w.List()); got != "a,b" {
		t.Fatalf("after 3 intervals of a: %s, want a,b", got)
	}
	now = now.Add(time.Millisecond)
	if got := ids(w.List()); got != "b" {
		t.Fatalf("after more than 3 intervals of a: %s, want b", got)
	}
}

func ids(ws []WorkerInfo) string {
	var s []string
	for _, w := range ws {
		s = append(s, w.WorkerID)
	}
	return strings.Join(s, ",")
}

func TestChartScalesAndSkipsPartialBucket(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)
	b := 10 * time.Second
	pts := []store.RatePoint{
		{At: now.Add(-30 * time.Second), Pages: 0},
		{At: now.Add(-20 * time.Second), Pages: 40, Errors: 10},
		{At: now.Add(-10 * time.Second), Pages: 20},
		{At: now.Add(-5 * time.Second), Pages: 1}, // still filling
	}
	c := buildChart(pts, b, now)
	if c.MaxPages != 4 || c.LastPages != 2 || c.MaxError != 1 {
		t.Errorf("peak %v last %v errors %v, want 4, 2, 1", c.MaxPages, c.LastPages, c.MaxError)
	}
	if n := len(strings.Fields(c.Pages)); n != 3 {
		t.Errorf("%d points, want 3 (partial bucket left out)", n)
	}
	// The peak sits on the top grid line (5/s scale), zero on the base line.
	if !strings.HasPrefix(c.Pages, "0.0,"+f1(c.Base)) {
		t.Errorf("first point %q does not start at zero (base %v)", c.Pages, c.Base)
	}
	if c.Grid[0].Label != "5/s" {
		t.Errorf("top grid = %s, want 5/s", c.Grid[0].Label)
	}
}

// TestHostileContentIsEscaped renders crawled titles, URLs and snippets containing markup
// and javascript: URLs; none survives as markup or as a clickable script URL.
func TestHostileContentIsEscaped(t *testing.T) {
	t.Parallel()
	evil := `<script>alert(1)</script>`
	res := store.SearchResults{Hits: []store.SearchHit{{
		URLID: 1, URL: `http://x.test/"><img src=x onerror=alert(2)>`, Title: evil,
		Snippet: []store.SnippetPart{{Text: `before <b onmouseover=alert(3)>`}, {Text: "word", Hit: true}, {Text: `</mark><script>alert(4)</script>`}},
	}}}
	var buf bytes.Buffer
	if err := searchPage(Chrome{CSRF: "tok"}, searchView{Q: "word", Res: res, Searched: true,
		Targets: []store.Target{{ID: 1, Spec: target.Spec{Name: evil}}}}, timeRef{time.Now()}).Render(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	pd := store.PageDetail{URLID: 1, URL: "javascript:alert(5)", Page: &store.PageInfo{Title: evil, ETag: `"><script>`},
		Links: []string{"javascript:alert(6)"}, Outlinks: []store.LinkRow{{URLID: 2, URL: `javascript:alert(7)`}}}
	if err := pagePage(Chrome{CSRF: "tok"}, pd, "req12345678", timeRef{time.Now()}).Render(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, bad := range []string{"<script>alert", "<img src=x", "<b onmouseover", `href="javascript:`, "</mark><script>"} {
		if strings.Contains(html, bad) {
			t.Errorf("rendered HTML contains %q", bad)
		}
	}
	if !strings.Contains(html, "<mark>word</mark>") {
		t.Error("search hit is not highlighted")
	}
	if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("hostile title is not shown as text")
	}
}

// TestOverviewStreamsOverSSE reads the overview from /events/overview, then, once a target
// starts, the overview again with it: a change is pushed, and nothing is pushed in between
// but comments (the overview did not change).
func TestOverviewStreamsOverSSE(t *testing.T) {
	t.Parallel()
	topo, _ := testenv.Broker(t)
	admin, err := pipeline.NewAdmin("", testenv.AMQPURL(), topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	ts, st := newTestServer(t, "", func(s *Server) { s.Queues = admin })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events/overview", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	buf := make([]byte, 0, 64*1024)
	tmp := make([]byte, 4096)
	readUntil := func(done func(string) bool) string {
		for !done(string(buf)) {
			n, err := resp.Body.Read(tmp)
			if err != nil {
				t.Fatalf("stream ended: %v after %d bytes ending %q", err, len(buf), buf[max(0, len(buf)-300):])
			}
			buf = append(buf, tmp[:n]...)
		}
		return string(buf)
	}
	ev := readUntil(func(s string) bool {
		return strings.Contains(s, "event: overview\n") && strings.Contains(s, ": keep-alive\n\n")
	})
	if !strings.Contains(ev, `data: `) || !strings.Contains(ev, `data-queue="`+topo.CrawlQueue()+`"`) || !strings.Contains(ev, `data-queue="`+topo.DeadLetterQueue()+`"`) {
		t.Errorf("event lacks the queue row:\n%s", ev)
	}
	if _, err := st.CreateTarget(t.Context(), target.Spec{Name: "overview-live", SeedURL: "http://example.com/", Scope: "host", MaxDepth: 1, MaxPages: 10, PerHostRPS: 1, MaxAttempts: 2}); err != nil {
		t.Fatal(err)
	}
	ev = readUntil(func(s string) bool {
		return strings.Count(s, "event: overview\n") == 2 && strings.Contains(s[strings.LastIndex(s, "event: overview\n"):], "\n\n")
	})
	if second := ev[strings.LastIndex(ev, "event: overview\n"):]; !strings.Contains(second, "overview-live") {
		t.Errorf("the second overview event lacks the new target:\n%s", second)
	}
}

// TestAPIDeleteTarget: DELETE answers 202 with the target, deleting, again 202 while it is
// deleting, and 404 once it is gone or for an unknown id; every other action on a deleting
// target answers 409 and says why.
func TestAPIDeleteTarget(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	tg, err := st.CreateTarget(t.Context(), target.Spec{Name: "t", SeedURL: "http://example.test/",
		Scope: "host", MaxDepth: 1, MaxPages: 10, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/targets/" + i64(tg.ID)
	for range 2 {
		resp, body := c.do(http.MethodDelete, path, "", nil)
		var got TargetJSON
		if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != http.StatusAccepted || got.ID != tg.ID || got.State != "deleting" {
			t.Fatalf("DELETE %s = %d %s, want 202 with the target deleting", path, resp.StatusCode, body)
		}
	}
	if _, body := c.get(path); !strings.Contains(body, `"state":"deleting"`) {
		t.Errorf("GET %s = %s, want it deleting", path, body)
	}
	if _, body := c.get("/api/targets"); !strings.Contains(body, `"state":"deleting"`) {
		t.Errorf("GET /api/targets = %s, want the target deleting", body)
	}
	for _, action := range []string{"pause", "resume", "cancel", "recrawl"} {
		resp, body := c.do(http.MethodPost, path+"/"+action, "application/json", nil)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "it is being deleted") {
			t.Errorf("POST %s/%s = %d %s, want 409 saying it is being deleted", path, action, resp.StatusCode, body)
		}
	}
	for done := false; !done; {
		step, err := st.PurgeTarget(t.Context(), tg.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		done = step.Done
	}
	for _, p := range []string{path, "/api/targets/999999"} {
		if resp, body := c.do(http.MethodDelete, p, "", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("DELETE %s = %d %s, want 404", p, resp.StatusCode, body)
		}
	}
}

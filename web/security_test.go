package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/internal/testenv"
	"github.com/trawlhq/trawl/store"
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
		{"/\x00/evil.example/", "/"},
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
	tg, err := st.CreateTarget(t.Context(), store.NewTarget{Name: "x", SeedURL: "http://example.com/", SeedHost: "example.com", Scope: "host", MaxDepth: 1, MaxPages: 10, PerHostRPS: 1, MaxAttempts: 2})
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

package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
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

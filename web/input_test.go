package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/trawlhq/trawl/target"
)

// TestParamsWithNUL: a query or form parameter holding NUL or invalid UTF-8 is a 400 naming
// it, on pages and in the API, never a 500 from PostgreSQL.
func TestParamsWithNUL(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	tg, err := st.CreateTarget(t.Context(), target.Spec{Name: "x", SeedURL: "http://example.com/", Scope: "host", MaxDepth: 1, MaxPages: 10, PerHostRPS: 1, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	id := i64(tg.ID)
	c := newClient(t, ts.URL)
	for _, tc := range []struct{ path, field string }{
		{"/api/search?q=a%00b", "q"},
		{"/search?q=%00", "q"},
		{"/api/search?q=%ff%fe", "q"},
		{"/api/targets/" + id + "/pages?ctype=text%00", "ctype"},
		{"/targets/" + id + "?ctype=%00", "ctype"},
		{"/targets/" + id + "?status=%00", "status"},
		{"/api/targets/" + id + "/hosts?after=%00", "after"},
		{"/api/retries?host=a%00", "host"},
		{"/api/failed?class=%00", "class"},
		{"/retries?host=%00", "host"},
		{"/api/dead-letters?reason=%00", "reason"},
		{"/api/dead-letters?host=%00", "host"},
		{"/targets?state=%00", "state"},
	} {
		resp, body := c.get(tc.path, "Accept", "application/json")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.field) {
			t.Errorf("%s = %d, want 400 naming %s:\n%.300s", tc.path, resp.StatusCode, tc.field, body)
		}
		if strings.HasPrefix(tc.path, "/api/") {
			var got apiError
			if err := json.Unmarshal([]byte(body), &got); err != nil || got.Field != tc.field {
				t.Errorf("%s: error body %s, want field %q", tc.path, body, tc.field)
			}
		}
	}
	// Form bodies too.
	c.get("/targets")
	form := url.Values{csrfFormField: {c.csrf}, "seed_url": {"http://a.example/"}, "name": {"a\x00b"}}
	resp, body := c.postForm("/targets", form)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "name") {
		t.Errorf("form with NUL in name = %d, want 400 naming name", resp.StatusCode)
	}
	if tgs, _ := st.Targets(t.Context(), 10); len(tgs) != 1 {
		t.Errorf("%d targets, want only the first", len(tgs))
	}
}

// TestBadPageCursorsAre400: a malformed paging cursor or an unknown state filter in a page's
// query string is bad input, answered 400 naming the parameter, not 503 "database
// unavailable" (the store's ErrInvalidQuery is no database error).
func TestBadPageCursorsAre400(t *testing.T) {
	t.Parallel()
	ts, _ := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	for _, tc := range []struct{ path, field string }{
		{"/targets?state=bogus", "state"},
		{"/targets?after=x", "after"},
		{"/retries?r_after=x", "r_after"},
		{"/retries?f_after=x", "f_after"},
	} {
		resp, body := c.get(tc.path)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.field+": ") {
			t.Errorf("GET %s = %d, want 400 naming %s; body has %q", tc.path, resp.StatusCode, tc.field,
				errorMessageRe.FindString(body))
		}
	}
}

var errorMessageRe = regexp.MustCompile(`<p class="error"[^>]*>[^<]*</p>`)

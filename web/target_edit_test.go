package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/target"
)

// apiErrors is a 400 of a target request as a client reads it.
type apiErrors struct {
	Error  string     `json:"error"`
	Field  string     `json:"field"`
	Errors []apiError `json:"errors"`
}

func errorFields(e apiErrors) []string {
	var out []string
	for _, fe := range e.Errors {
		out = append(out, fe.Field)
	}
	return out
}

// TestAPIPatchTarget: PATCH /api/targets/{id} is a merge patch (only the fields given change,
// null resets one to its default), names every field at fault in one 400, and answers 404 for
// an unknown target and 409 for one being deleted.
func TestAPIPatchTarget(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	tg, err := st.CreateTarget(t.Context(), target.Spec{Name: "t", SeedURL: "http://patch.test/", Scope: "host",
		MaxDepth: 3, MaxPages: 100, PerHostRPS: 1, MaxAttempts: 2, Sitemaps: true})
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/targets/" + i64(tg.ID)
	patch := func(body string) (int, string) {
		t.Helper()
		resp, b := c.do(http.MethodPatch, path, "application/merge-patch+json", strings.NewReader(body))
		return resp.StatusCode, b
	}
	status, body := patch(`{"name":"docs","max_pages":50,"per_host_rps":2.5,"include":"/docs/","recrawl_interval":"24h","sitemaps":false}`)
	var got TargetJSON
	if err := json.Unmarshal([]byte(body), &got); err != nil || status != http.StatusOK {
		t.Fatalf("PATCH = %d %s", status, body)
	}
	want := TargetJSON{ID: tg.ID, Name: "docs", SeedURL: "http://patch.test/", Scope: "host", MaxDepth: 3, MaxPages: 50,
		PerHostRPS: 2.5, MaxAttempts: 2, RecrawlInterval: "24h0m0s", State: "running", Discovered: 1, Pending: 1,
		Include: "/docs/", SearchLanguage: "simple", CreatedAt: got.CreatedAt}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("PATCH answer (-want +got):\n%s", diff)
	}
	// null resets a field to its default; the fields left out stay; the fixed fields may be sent
	// back as they are.
	status, body = patch(`{"recrawl_interval":null,"include":null,"max_depth":null,"seed_url":"http://patch.test/","scope":"host"}`)
	got = TargetJSON{}
	if err := json.Unmarshal([]byte(body), &got); err != nil || status != http.StatusOK {
		t.Fatalf("PATCH with nulls = %d %s", status, body)
	}
	if got.RecrawlInterval != "" || got.Include != "" || got.MaxDepth != target.DefaultMaxDepth || got.Name != "docs" || got.MaxPages != 50 {
		t.Fatalf("after nulls: %+v", got)
	}
	stored, err := st.Target(t.Context(), tg.ID)
	if err != nil || stored.Name != "docs" || stored.PerHostRPS != 2.5 || stored.Sitemaps {
		t.Fatalf("stored = %+v, %v", stored.Spec, err)
	}

	bad := []struct {
		name, body string
		fields     []string
	}{
		{"every field at fault", `{"include":"(","max_pages":0,"max_attempts":0,"recrawl_interval":"often"}`,
			[]string{"include", "max_pages", "max_attempts", "recrawl_interval"}},
		{"another seed", `{"seed_url":"http://elsewhere.test/"}`, []string{"seed_url"}},
		{"another scope", `{"scope":"domain"}`, []string{"scope"}},
	}
	for _, tc := range bad {
		status, body := patch(tc.body)
		var e apiErrors
		if err := json.Unmarshal([]byte(body), &e); err != nil || status != http.StatusBadRequest {
			t.Errorf("%s: PATCH = %d %s, want 400", tc.name, status, body)
			continue
		}
		if diff := cmp.Diff(tc.fields, errorFields(e)); diff != "" {
			t.Errorf("%s: errors (-want +got):\n%s", tc.name, diff)
		}
		if e.Field != tc.fields[0] || !strings.HasPrefix(e.Error, tc.fields[0]+": ") {
			t.Errorf("%s: the first error is {%q, %q}, want it on %s", tc.name, e.Error, e.Field, tc.fields[0])
		}
	}
	for _, body := range []string{`{"colour":"red"}`, `{"max_pages":"many"}`, `{"name":"a\u0000b"}`, `[1]`} {
		if status, got := patch(body); status != http.StatusBadRequest {
			t.Errorf("PATCH %s = %d %s, want 400", body, status, got)
		}
	}
	if after, _ := st.Target(t.Context(), tg.ID); after.Spec != stored.Spec {
		t.Errorf("refused patches changed the target: %+v", after.Spec)
	}

	if resp, body := c.do(http.MethodPatch, "/api/targets/999999", "application/json", strings.NewReader(`{"name":"x"}`)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("PATCH of an unknown target = %d %s, want 404", resp.StatusCode, body)
	}
	if _, err := st.DeleteTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	if status, body := patch(`{"name":"x"}`); status != http.StatusConflict || !strings.Contains(body, "it is being deleted") {
		t.Errorf("PATCH of a deleting target = %d %s, want 409 saying it is being deleted", status, body)
	}
}

// TestAPICreateTargetNamesEveryField: a create's 400 keeps {"error", "field"} for the first
// field at fault and lists all of them in "errors".
func TestAPICreateTargetNamesEveryField(t *testing.T) {
	t.Parallel()
	ts, _ := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	resp, body := c.do(http.MethodPost, "/api/targets", "application/json",
		strings.NewReader(`{"seed_url":"ftp://x.test/","max_depth":-1,"exclude":"[z-a]"}`))
	var e apiErrors
	if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST = %d %s, want 400", resp.StatusCode, body)
	}
	if diff := cmp.Diff([]string{"seed_url", "exclude", "max_depth"}, errorFields(e)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if e.Field != "seed_url" || !strings.HasPrefix(e.Error, "seed_url: ") {
		t.Errorf("first error = {%q, %q}, want it on seed_url", e.Error, e.Field)
	}
}

// TestEditTargetForm edits a target through the form: it shows the target's values and its
// fixed seed, every field at fault at once (in place with htmx, 422 without), and saves.
func TestEditTargetForm(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	tg, err := st.CreateTarget(t.Context(), target.Spec{Name: "form", SeedURL: "http://form.test/", Scope: "host",
		MaxDepth: 3, MaxPages: 100, PerHostRPS: 0.5, MaxAttempts: 2, RecrawlInterval: 36 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	path := "/targets/" + i64(tg.ID) + "/edit"
	resp, body := c.get(path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", path, resp.StatusCode)
	}
	for _, want := range []string{`id="edit-seed">http://form.test/<`, `value="form"`, `value="100"`, `value="0.5"`,
		`value="36h"`, `placeholder="empty: never; e.g. 24h"`, "The seed URL and the scope are fixed"} {
		if !strings.Contains(body, want) {
			t.Errorf("edit form lacks %s", want)
		}
	}
	if strings.Contains(body, `id="f-sitemaps" name="sitemaps" type="checkbox" value="on" checked`) {
		t.Errorf("edit form shows sitemaps on for a target without them")
	}
	form := func(kv ...string) url.Values {
		v := url.Values{"name": {"form"}, "max_depth": {"3"}, "max_pages": {"100"}, "per_host_rps": {"0.5"},
			"recrawl_interval": {"36h"}, "max_attempts": {"2"}, "sitemaps": {"off"}, csrfFormField: {c.csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	bad := form("max_depth", "deep", "max_pages", "0", "include", "docs/(", "recrawl_interval", "often")
	resp, body = c.postForm(path, bad, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="edit-target"`) || strings.Contains(body, "<html") {
		t.Fatalf("htmx POST with errors = %d, want the form alone:\n%s", resp.StatusCode, body)
	}
	for _, f := range []string{"max_depth", "max_pages", "include", "recrawl_interval"} {
		if !strings.Contains(body, `id="`+f+`-error"`) {
			t.Errorf("no inline error for %s", f)
		}
	}
	if !strings.Contains(body, "4 fields need a change") || !strings.Contains(body, `value="docs/("`) {
		t.Errorf("the form does not sum up its errors or lost what was typed:\n%s", body)
	}
	if resp, _ := c.postForm(path, bad); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("POST with errors without JS = %d, want 422", resp.StatusCode)
	}
	if got, _ := st.Target(t.Context(), tg.ID); got.Spec != tg.Spec {
		t.Fatalf("a refused edit changed the target: %+v", got.Spec)
	}

	resp, _ = c.postForm(path, form("name", "renamed", "max_pages", "40", "per_host_rps", "2", "recrawl_interval", "",
		"include", "/docs/", "sitemaps", "on"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/targets/"+i64(tg.ID)+"?msg=edit" {
		t.Fatalf("POST = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	got, err := st.Target(t.Context(), tg.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := tg.Spec
	want.Name, want.MaxPages, want.PerHostRPS, want.RecrawlInterval, want.Include, want.Sitemaps = "renamed", 40, 2, 0, "/docs/", true
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("saved spec (-want +got):\n%s", diff)
	}
	if _, body := c.get("/targets/" + i64(tg.ID) + "?msg=edit"); !strings.Contains(body, "Saved. A new rate paces") {
		t.Errorf("the target page does not say the edit was saved")
	}

	if _, err := st.DeleteTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	if resp, _ := c.postForm(path, form()); resp.StatusCode != http.StatusConflict {
		t.Errorf("editing a deleting target = %d, want 409", resp.StatusCode)
	}
	if resp, _ := c.get("/targets/999999/edit"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET the edit form of an unknown target = %d, want 404", resp.StatusCode)
	}
}

// TestAddTargetFormShowsEveryError: the add form reports every field at fault at once, a
// number that does not parse among them.
func TestAddTargetFormShowsEveryError(t *testing.T) {
	t.Parallel()
	ts, _ := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	c.get("/targets")
	v := url.Values{"seed_url": {"ftp://x.test/"}, "max_depth": {"deep"}, "max_attempts": {"0"}, "exclude": {"[z-a]"},
		csrfFormField: {c.csrf}}
	resp, body := c.postForm("/targets", v, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	for _, f := range []string{"seed_url", "max_depth", "max_attempts", "exclude"} {
		if !strings.Contains(body, `id="`+f+`-error"`) {
			t.Errorf("no inline error for %s in:\n%s", f, body)
		}
	}
	if !strings.Contains(body, "4 fields need a change") {
		t.Errorf("the form does not sum up its 4 errors")
	}
}

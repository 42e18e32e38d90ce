package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

// searchStore answers the search page: two targets and, for every query, the results given,
// remembering the query it was asked.
type searchStore struct {
	Store // nil: the search page needs no other method
	res   store.SearchResults

	mu  sync.Mutex
	got []store.SearchQuery
}

func (f *searchStore) Search(_ context.Context, q store.SearchQuery) (store.SearchResults, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, q)
	return f.res, nil
}

func (f *searchStore) Targets(context.Context, int) ([]store.Target, error) {
	return []store.Target{{ID: 2, Spec: target.Spec{Name: "beta"}}, {ID: 1, Spec: target.Spec{Name: "<alpha>"}}}, nil
}

// TestSearchPageTargetFilterAndCount: the search page offers a select of the targets, keeps the
// one searched selected, passes it to the store, and says how many pages match: exactly, or
// "more than" the cap.
func TestSearchPageTargetFilterAndCount(t *testing.T) {
	t.Parallel()
	hit := store.SearchHit{URLID: 7, TargetID: 2, URL: "http://b.example/7", Title: "Seven"}
	for _, tc := range []struct {
		name, path string
		res        store.SearchResults
		target     int64
		selected   string
		count      string
	}{
		{"one target", "/search?q=word&target=2", store.SearchResults{Hits: []store.SearchHit{hit, hit}, Total: 2}, 2,
			`<option value="2" selected>beta (#2)</option>`, "2 pages match."},
		{"every target", "/search?q=word", store.SearchResults{Hits: []store.SearchHit{hit}, Total: 1}, 0,
			`<option value="" selected>All targets</option>`, "1 page matches."},
		{"capped", "/search?q=word&target=1", store.SearchResults{Hits: []store.SearchHit{hit}, Total: 1000, TotalCapped: true}, 1,
			`<option value="1" selected>&lt;alpha&gt; (#1)</option>`, "More than 1,000 pages match; the best of the newest 1,000 are shown."},
		{"a target not in the list", "/search?q=word&target=9", store.SearchResults{}, 9,
			`<option value="9" selected>target (#9)</option>`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := &searchStore{res: tc.res}
			c := newClient(t, serve(t, st, "", nil).URL)
			resp, body := c.get(tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d %s", tc.path, resp.StatusCode, body)
			}
			if !strings.Contains(body, `<select id="search-target" name="target">`) || !strings.Contains(body, tc.selected) {
				t.Errorf("GET %s: want the target select with %s selected:\n%s", tc.path, tc.selected, body)
			}
			if strings.Count(body, " selected>") != 1 {
				t.Errorf("GET %s: want exactly one option selected", tc.path)
			}
			if tc.count != "" && !strings.Contains(body, `id="hit-count">`+tc.count) {
				t.Errorf("GET %s: want the count %q:\n%s", tc.path, tc.count, body)
			}
			if len(st.got) != 1 || st.got[0].TargetID != tc.target || st.got[0].Query != "word" {
				t.Errorf("GET %s: store asked %+v, want word in target %d", tc.path, st.got, tc.target)
			}
		})
	}
}

// TestAPITargetSearchLanguage: the API takes search_language, defaults it to simple, shows it,
// and refuses a language PostgreSQL does not have with a 400 naming the field; so does the
// form, next to its field.
func TestAPITargetSearchLanguage(t *testing.T) {
	t.Parallel()
	ts, _ := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	for body, want := range map[string]string{
		`{"seed_url":"http://a.example/","search_language":"English"}`: "english",
		`{"seed_url":"http://b.example/"}`:                             "simple",
	} {
		resp, got := c.do(http.MethodPost, "/api/targets", "application/json", strings.NewReader(body))
		var tj TargetJSON
		if err := json.Unmarshal([]byte(got), &tj); err != nil || resp.StatusCode != http.StatusCreated || tj.SearchLanguage != want {
			t.Errorf("POST %s = %d %s, want 201 with search_language %q", body, resp.StatusCode, got, want)
		}
	}
	for _, lang := range []string{"klingon", "english!"} {
		body := `{"seed_url":"http://c.example/","search_language":"` + lang + `"}`
		resp, got := c.do(http.MethodPost, "/api/targets", "application/json", strings.NewReader(body))
		var e apiError
		if err := json.Unmarshal([]byte(got), &e); err != nil || resp.StatusCode != http.StatusBadRequest || e.Field != "search_language" {
			t.Errorf("POST %s = %d %s, want 400 on search_language", body, resp.StatusCode, got)
		}
	}
	c.get("/targets")
	resp, got := c.postForm("/targets", map[string][]string{csrfFormField: {c.csrf}, "seed_url": {"http://d.example/"},
		"search_language": {"klingon"}}, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(got, `id="search_language-error"`) || !strings.Contains(got, `value="klingon"`) {
		t.Errorf("form with an unknown language = %d, want the form again with the error next to the field:\n%s", resp.StatusCode, got)
	}
}

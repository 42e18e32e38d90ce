package web

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestJSONBodies: an API body is exactly one JSON value of at most 1 MiB; trailing data is a
// 400, a larger body a 413, and a string holding NUL a 400 naming the field. Nothing is stored.
func TestJSONBodies(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	big := `{"seed_url":"http://a.example/","name":"` + strings.Repeat("x", 10<<20) + `"}`
	for _, tc := range []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"trailing word", "/api/targets", `{"seed_url":"http://a.example/"} xyz`, 400, "body"},
		{"two objects", "/api/targets", `{"seed_url":"http://a.example/"}{"seed_url":"http://b.example/"}`, 400, "body"},
		{"trailing garbage", "/api/targets", `{"seed_url":"http://a.example/"}]`, 400, "body"},
		{"oversized", "/api/targets", big, 413, ""},
		{"oversized after a value", "/api/targets", `{"seed_url":"http://a.example/"}` + strings.Repeat(" ", 2<<20), 413, ""},
		{"NUL in name", "/api/targets", `{"seed_url":"http://a.example/","name":"a\u0000b"}`, 400, "name"},
		{"NUL in include", "/api/targets", `{"seed_url":"http://a.example/","include":"\u0000"}`, 400, "include"},
		{"NUL in exclude", "/api/targets", `{"seed_url":"http://a.example/","exclude":"x\u0000"}`, 400, "exclude"},
		{"NUL in seed", "/api/targets", `{"seed_url":"http://a.example/\u0000"}`, 400, "seed_url"},
		{"NUL in purge host", "/api/dead-letters/purge", `{"host":"a\u0000"}`, 400, "host"},
		{"NUL in purge class", "/api/dead-letters/purge", `{"error_class":"\u0000"}`, 400, "error_class"},
		{"NUL in requeue-all reason", "/api/dead-letters/requeue-all", `{"reason":"rejected\u0000"}`, 400, "reason"},
		{"NUL in request id", "/api/pages/1/recrawl", `{"request_id":"abcdefgh\u0000"}`, 400, "request_id"},
		{"trailing data on requeue", "/api/dead-letters/requeue", `{"ids":[1]} {"ids":[2]}`, 400, "body"},
		{"unknown field", "/api/targets", `{"seed_url":"http://a.example/","colour":"red"}`, 400, "colour"},
	} {
		resp, body := c.do(http.MethodPost, tc.path, "application/json", strings.NewReader(tc.body))
		var got apiError
		_ = json.Unmarshal([]byte(body), &got)
		if resp.StatusCode != tc.status || got.Field != tc.field || got.Error == "" {
			t.Errorf("%s: %d %.200s, want %d naming %q", tc.name, resp.StatusCode, body, tc.status, tc.field)
		}
	}
	if tgs, err := st.Targets(t.Context(), 10); err != nil || len(tgs) != 0 {
		t.Errorf("refused bodies stored targets: %v %v", tgs, err)
	}
	// One value, with white space after it, is fine.
	if resp, body := c.do(http.MethodPost, "/api/targets", "application/json", strings.NewReader("{\"seed_url\":\"http://a.example/\"}\n\t ")); resp.StatusCode != http.StatusCreated {
		t.Errorf("a good body = %d %s, want 201", resp.StatusCode, body)
	}
}

func TestNulField(t *testing.T) {
	t.Parallel()
	type inner struct {
		Host string `json:"host"`
	}
	type outer struct {
		Name   string            `json:"name"`
		Tags   []string          `json:"tags"`
		Inner  *inner            `json:"inner"`
		Labels map[string]string `json:"labels"`
		inner
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{&outer{Name: "ok", Tags: []string{"a", "b"}}, ""},
		{&outer{Name: "a\x00"}, "name"},
		{&outer{Tags: []string{"a", "\x00"}}, "tags[1]"},
		{&outer{Inner: &inner{Host: "\x00"}}, "inner.host"},
		{&outer{Labels: map[string]string{"k": "\x00"}}, "labels.k"},
		{&outer{inner: inner{Host: "\x00"}}, ""}, // unexported: json never fills it
	} {
		if got := nulField(reflect.ValueOf(tc.v), ""); got != tc.want {
			t.Errorf("nulField(%+v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

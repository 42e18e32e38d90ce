package service

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHealthzReportsGoroutines: /healthz carries the goroutine count the soak benchmark samples.
func TestHealthzReportsGoroutines(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(HealthHandler(nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status     string `json:"status"`
		Goroutines int    `json:"goroutines"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "ok" || body.Goroutines < 1 {
		t.Fatalf("healthz = %+v, want status ok and a goroutine count", body)
	}
}

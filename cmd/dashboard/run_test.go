package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/trawlhq/trawl/web"
)

func TestAPITokenCommand(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"dashboard", "api-token"}, []string{"TRAWL_DASHBOARD_PASSWORD=pw-1"}, &out); err != nil {
		t.Fatal(err)
	}
	want := web.NewAuth("pw-1").APIToken()
	if got := strings.TrimSpace(out.String()); got != want || !strings.HasPrefix(got, "trawl_") {
		t.Errorf("api-token printed %q, want %q", got, want)
	}
	if got := web.NewAuth("pw-2").APIToken(); got == want {
		t.Error("different passwords give the same token")
	}
	err := run(t.Context(), []string{"dashboard", "api-token"}, nil, &out)
	if err == nil || !strings.Contains(err.Error(), "TRAWL_DASHBOARD_PASSWORD") {
		t.Errorf("api-token without a password: %v", err)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ env, name string }{
		{"TRAWL_DASHBOARD_REFRESH=10ms", "TRAWL_DASHBOARD_REFRESH"},
		{"TRAWL_DASHBOARD_REFRESH=often", "TRAWL_DASHBOARD_REFRESH"},
		{"TRAWL_RECRAWL_TIMEOUT=0s", "TRAWL_RECRAWL_TIMEOUT"},
		{"TRAWL_DASHBOARD_SECURE_COOKIES=maybe", "TRAWL_DASHBOARD_SECURE_COOKIES"},
	} {
		err := run(t.Context(), []string{"dashboard"}, []string{tc.env}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line naming %s", tc.env, err, tc.name)
		}
	}
}

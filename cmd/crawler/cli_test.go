package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/service"
)

// TestCommandLine runs the crawler's command line through run: version and help answer on stdout
// without reading the configuration (which is invalid here) or touching the network (the
// context is already cancelled), and an unknown argument is a usage error (exit status 2) rather
// than a worker that starts and joins the queues.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	badConfig := []string{"TRAWL_LOG_FORMAT=xml", "TRAWL_AMQP_URL=amqp://127.0.0.1:1/", "TRAWL_DATABASE_URL=postgres://127.0.0.1:1/x"}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	version := service.VersionLine("crawler") + "\n"
	tests := []struct {
		args       []string
		wantStdout string // "usage" stands for the usage text
		wantUsage  bool   // a usage error
	}{
		{[]string{"crawler", "version"}, version, false},
		{[]string{"crawler", "--version"}, version, false},
		{[]string{"crawler", "help"}, "usage", false},
		{[]string{"crawler", "-h"}, "usage", false},
		{[]string{"crawler", "--help"}, "usage", false},
		{[]string{"crawler", "bogus"}, "", true},
		{[]string{"crawler", "-version"}, "", true},
		{[]string{"crawler", "healthcheck", "extra"}, "", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			t.Parallel()
			var stdout bytes.Buffer
			err := run(ctx, tt.args, badConfig, &stdout)
			if got := errors.Is(err, service.ErrUsage); got != tt.wantUsage || (err != nil && !tt.wantUsage) {
				t.Fatalf("run(%q) = %v, want a usage error: %v", tt.args, err, tt.wantUsage)
			}
			want := tt.wantStdout
			if want == "usage" {
				want = cli.Usage()
			}
			if diff := cmp.Diff(want, stdout.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if tt.wantUsage {
				var stderr bytes.Buffer
				if code := service.Exit(&stderr, "crawler", err); code != 2 || !strings.Contains(stderr.String(), cli.Usage()) {
					t.Errorf("Exit = %d with stderr %q, want 2 and the usage", code, stderr.String())
				}
			}
		})
	}
	if !strings.HasPrefix(cli.Usage(), "Usage: crawler [command]") || !strings.Contains(cli.Usage(), "healthcheck") {
		t.Errorf("usage does not name the binary and its commands:\n%s", cli.Usage())
	}
}

// Package clitest checks a binary's command line the same way for every binary: version and
// help answer on stdout without reading the configuration or touching the network, and an
// unknown argument is a usage error (exit status 2) rather than a worker that starts.
package clitest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/service"
)

// RunFunc is a binary's run: run(ctx, args, environ, stdout).
type RunFunc func(ctx context.Context, args, environ []string, stdout io.Writer) error

// Check runs cli's binary through run with an invalid configuration and a cancelled context, so
// that a command line which started the worker would fail instead of answering.
func Check(t *testing.T, cli service.CLI, run RunFunc) {
	t.Helper()
	bin := cli.Binary
	badConfig := []string{"TRAWL_LOG_FORMAT=xml", "TRAWL_AMQP_URL=amqp://127.0.0.1:1/", "TRAWL_DATABASE_URL=postgres://127.0.0.1:1/x"}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	version := service.VersionLine(bin) + "\n"
	tests := []struct {
		args       []string
		wantStdout string // "usage" stands for the usage text
		wantUsage  bool   // a usage error
	}{
		{[]string{bin, "version"}, version, false},
		{[]string{bin, "--version"}, version, false},
		{[]string{bin, "help"}, "usage", false},
		{[]string{bin, "-h"}, "usage", false},
		{[]string{bin, "--help"}, "usage", false},
		{[]string{bin, "bogus"}, "", true},
		{[]string{bin, "-version"}, "", true},
		{[]string{bin, "healthcheck", "extra"}, "", true},
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
				if code := service.Exit(&stderr, bin, err); code != 2 || !strings.Contains(stderr.String(), cli.Usage()) {
					t.Errorf("Exit = %d with stderr %q, want 2 and the usage", code, stderr.String())
				}
			}
		})
	}
	if !strings.HasPrefix(cli.Usage(), "Usage: "+bin+" [command]") || !strings.Contains(cli.Usage(), "healthcheck") {
		t.Errorf("usage does not name the binary and its commands:\n%s", cli.Usage())
	}
}

package service

import (
	"bytes"
	"errors"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolveVersion(t *testing.T) {
	t.Parallel()
	info := func(main string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/trawlhq/trawl", Version: main}}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	tests := []struct {
		name    string
		stamped string
		info    func() (*debug.BuildInfo, bool)
		want    string
	}{
		{"stamped by -ldflags wins", "v0.1.0-3-gabcdef0-dirty", info("v0.0.0-2026", "vcs.revision", "0123456789abcdef"), "v0.1.0-3-gabcdef0-dirty"},
		{"module version Go recorded", "dev", info("v0.1.0+dirty"), "v0.1.0+dirty"},
		{"vcs revision", "dev", info("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.modified", "false"), "dev+0123456789ab"},
		{"modified vcs revision", "dev", info("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.modified", "true"), "dev+0123456789ab-dirty"},
		{"short revision", "", info("", "vcs.revision", "abc"), "dev+abc"},
		{"nothing recorded", "dev", info("(devel)"), "dev"},
		{"no build info", "dev", none, "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, resolveVersion(tt.stamped, tt.info)); diff != "" {
				t.Errorf("resolveVersion (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExit(t *testing.T) {
	t.Parallel()
	cli := CLI{Binary: "tool", Summary: "Does things.", Commands: []Command{{"check", "Check things."}}}
	_, _, usageErr := cli.Parse([]string{"tool", "nope"}, &bytes.Buffer{})
	tests := []struct {
		name       string
		err        error
		wantCode   int
		wantStderr string
	}{
		{"usage error", usageErr, 2, "tool: unknown argument \"nope\"\n\n" + cli.Usage()},
		{"other error", errors.New("configuration: TRAWL_X: bad"), 1, "tool: configuration: TRAWL_X: bad\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			code := Exit(&stderr, "tool", tt.err)
			if diff := cmp.Diff([]any{tt.wantCode, tt.wantStderr}, []any{code, stderr.String()}); diff != "" {
				t.Errorf("Exit (-want +got):\n%s", diff)
			}
		})
	}
	want := "Usage: tool [command]\n\nDoes things.\n\nCommands:\n" +
		"  check        Check things.\n" +
		"  version      Print the version and exit (also --version).\n" +
		"  help         Print this help and exit (also -h, --help).\n" +
		"\nSettings are TRAWL_* environment variables (README.md, Configuration).\n"
	if diff := cmp.Diff(want, cli.Usage()); diff != "" {
		t.Errorf("Usage (-want +got):\n%s", diff)
	}
}

package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/service"
)

func TestConfigFetchSettings(t *testing.T) {
	t.Parallel()
	var cfg Config
	if err := service.LoadConfig(nil, &cfg); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	// Unset timeouts are derived from the total by crawl.FetchConfig: 10s and 30s.
	if cfg.ConnectTimeout != 0 || cfg.FirstByteTimeout != 0 || cfg.FetchTimeout != 30*time.Second ||
		!slices.Equal(cfg.AllowedPorts, []int{80, 443}) || len(cfg.AllowedNetworks) != 0 || cfg.PublishLinger != 15*time.Millisecond ||
		cfg.ResultsPerMessage != 8 {
		t.Errorf("defaults: connect %s first byte %s total %s ports %v networks %v", cfg.ConnectTimeout, cfg.FirstByteTimeout, cfg.FetchTimeout, cfg.AllowedPorts, cfg.AllowedNetworks)
	}

	var short Config
	if err := service.LoadConfig([]string{"TRAWL_FETCH_TIMEOUT=5s"}, &short); err != nil {
		t.Errorf("a short total timeout alone: %v", err)
	}
	for _, ua := range []string{"TrawlBot/0.1 (+https://example.com/bot)", "my_crawler (ops@example.com)", "Bot-X http://example.com"} {
		var cfg Config
		if err := service.LoadConfig([]string{"TRAWL_USER_AGENT=" + ua}, &cfg); err != nil {
			t.Errorf("TRAWL_USER_AGENT=%q: %v", ua, err)
		}
	}

	cfg = Config{}
	env := []string{"TRAWL_ALLOWED_PORTS=80,443,8080", "TRAWL_ALLOWED_NETWORKS=10.1.2.3/24, fd00::/8", "TRAWL_CONNECT_TIMEOUT=2s", "TRAWL_FIRST_BYTE_TIMEOUT=5s"}
	if err := service.LoadConfig(env, &cfg); err != nil {
		t.Fatalf("LoadConfig(%q): %v", env, err)
	}
	nets, err := parsePrefixes(cfg.AllowedNetworks)
	want := []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("fd00::/8")}
	if err != nil || !slices.Equal(nets, want) || !slices.Equal(cfg.AllowedPorts, []int{80, 443, 8080}) {
		t.Errorf("networks %v (%v), ports %v", nets, err, cfg.AllowedPorts)
	}

	for _, tc := range []struct{ env, variable string }{
		{"TRAWL_CONNECT_TIMEOUT=1ms", "TRAWL_CONNECT_TIMEOUT"},
		{"TRAWL_CONNECT_TIMEOUT=1m", "TRAWL_CONNECT_TIMEOUT"}, // longer than the total
		{"TRAWL_FIRST_BYTE_TIMEOUT=45s", "TRAWL_FIRST_BYTE_TIMEOUT"},
		{"TRAWL_FETCH_TIMEOUT=5s\x00TRAWL_FIRST_BYTE_TIMEOUT=6s", "TRAWL_FIRST_BYTE_TIMEOUT"},
		{"TRAWL_CRAWLER_PUBLISH_LINGER=-1ms", "TRAWL_CRAWLER_PUBLISH_LINGER"},
		{"TRAWL_CRAWLER_PUBLISH_LINGER=2s", "TRAWL_CRAWLER_PUBLISH_LINGER"},
		{"TRAWL_CRAWLER_RESULTS_PER_MESSAGE=0", "TRAWL_CRAWLER_RESULTS_PER_MESSAGE"},
		{"TRAWL_CRAWLER_RESULTS_PER_MESSAGE=65", "TRAWL_CRAWLER_RESULTS_PER_MESSAGE"},
		{"TRAWL_ALLOWED_PORTS=80,0", "TRAWL_ALLOWED_PORTS"},
		{"TRAWL_ALLOWED_PORTS=80,70000", "TRAWL_ALLOWED_PORTS"},
		{"TRAWL_ALLOWED_PORTS=http", "TRAWL_ALLOWED_PORTS"},
		{"TRAWL_ALLOWED_NETWORKS=10.0.0.1", "TRAWL_ALLOWED_NETWORKS"},
		{"TRAWL_ALLOWED_NETWORKS=intranet", "TRAWL_ALLOWED_NETWORKS"},
		{"TRAWL_USER_AGENT=TrawlBot/0.1", "TRAWL_USER_AGENT"},               // no contact
		{"TRAWL_USER_AGENT=(+https://example.com/bot)", "TRAWL_USER_AGENT"}, // no product token
		{"TRAWL_USER_AGENT=TrawlBot/0.1 (+https://example.com/bot)\r\nX-Evil: 1", "TRAWL_USER_AGENT"},
	} {
		var cfg Config
		err := service.LoadConfig(strings.Split(tc.env, "\x00"), &cfg)
		if err == nil || !strings.Contains(err.Error(), tc.variable) {
			t.Errorf("LoadConfig(%q) = %v, want an error naming %s", tc.env, err, tc.variable)
		}
	}
}

package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/trawlhq/trawl/service"
)

// Config is the dashboard's configuration.
type Config struct {
	service.Common
	DatabaseURL string `env:"TRAWL_DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/trawl?sslmode=disable"`
	Addr        string `env:"TRAWL_DASHBOARD_ADDR" envDefault:":8080"`
	Password    string `env:"TRAWL_DASHBOARD_PASSWORD"`
	// SecureCookies marks the session and CSRF cookies Secure; set it when the dashboard is
	// served over HTTPS (behind a TLS-terminating proxy).
	SecureCookies bool `env:"TRAWL_DASHBOARD_SECURE_COOKIES" envDefault:"false"`
	// AllowedHosts are host names, besides loopback names, that requests may be addressed to.
	// Without a password nothing else is served (against DNS rebinding); with one, when set, it
	// restricts the host names too.
	AllowedHosts []string `env:"TRAWL_DASHBOARD_ALLOWED_HOSTS"`
	// TrustedProxies are addresses or CIDR ranges of reverse proxies whose X-Forwarded-For
	// header names the client (for login throttling and logs). Unset, it is ignored.
	TrustedProxies []string `env:"TRAWL_DASHBOARD_TRUSTED_PROXIES"`
	// RefreshInterval is how often the live views are pushed to browsers.
	RefreshInterval time.Duration `env:"TRAWL_DASHBOARD_REFRESH" envDefault:"2s"`
	// RecrawlTimeout bounds one re-crawl RPC.
	RecrawlTimeout time.Duration `env:"TRAWL_RECRAWL_TIMEOUT" envDefault:"15s"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.DatabaseURL == "" {
		return errors.New("TRAWL_DATABASE_URL: must not be empty")
	}
	if c.Addr == "" {
		return errors.New("TRAWL_DASHBOARD_ADDR: must not be empty")
	}
	if c.RefreshInterval < 100*time.Millisecond {
		return fmt.Errorf("TRAWL_DASHBOARD_REFRESH: must be at least 100ms, got %s", c.RefreshInterval)
	}
	for _, h := range c.AllowedHosts {
		if h = strings.TrimSpace(h); h == "" || strings.ContainsAny(h, "/ \t@?#") {
			return fmt.Errorf("TRAWL_DASHBOARD_ALLOWED_HOSTS: %q is not a host name (give names like dash.example.com, comma-separated)", h)
		}
	}
	if _, err := parseProxies(c.TrustedProxies); err != nil {
		return err
	}
	if c.RecrawlTimeout < time.Second {
		return fmt.Errorf("TRAWL_RECRAWL_TIMEOUT: must be at least 1s, got %s", c.RecrawlTimeout)
	}
	return nil
}

// cli is the dashboard's command line.
var cli = service.CLI{
	Binary: "dashboard",
	Summary: "Trawl's web UI and JSON API. Without a command (or with serve) it serves on TRAWL_DASHBOARD_ADDR\n" +
		"until SIGINT or SIGTERM.",
	Commands: []service.Command{
		{Name: "serve", Summary: "Serve the dashboard (the default)."},
		{Name: "migrate", Summary: "Apply the database migrations, then exit."},
		{Name: "api-token", Summary: "Print the API token derived from TRAWL_DASHBOARD_PASSWORD."},
		{Name: "healthcheck", Summary: "Ask the running dashboard's /healthz on TRAWL_DASHBOARD_ADDR; exit 0 when healthy."},
	},
}

// parseProxies reads TRAWL_DASHBOARD_TRUSTED_PROXIES: addresses (one host) or CIDR ranges.
func parseProxies(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range ss {
		v = strings.TrimSpace(v)
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("TRAWL_DASHBOARD_TRUSTED_PROXIES: %q is not an IP address or CIDR range", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

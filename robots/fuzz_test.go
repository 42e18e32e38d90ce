package robots

import (
	"regexp"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		rfcExample,
		"User-agent: *\nDisallow: /*.php$\nAllow: /a\nCrawl-delay: 2.5\nSitemap: http://x/s.xml",
		"\xef\xbb\xbfuser-agent:trawlbot\r\ndisallow:/%E3%83%84*$\r\n",
		"\xef\xbbUser-agent: trawlbot\nDisallow: /x",
		"User-agent: *\nDisallow: /" + strings.Repeat("*a", 50) + "$",
		"Disallow /x\nuser agent *\ndissallow: /%zz%2f%7e",
		"\x00\xff# junk\nUser-agent: \xff\nDisallow: \xfe",
	} {
		f.Add([]byte(s), "TrawlBot/0.1", "/a/b.php?x=1")
	}
	f.Fuzz(func(t *testing.T, body []byte, agent, path string) {
		r := Parse(body)
		rules := r.For(agent)
		if !rules.Allowed("/robots.txt") {
			t.Fatal("/robots.txt disallowed")
		}
		got := rules.Allowed(path)
		if again := Parse(body).Allowed(agent, path); again != got {
			t.Fatalf("Allowed differs between two parses: %t, %t", got, again)
		}
		if d, ok := rules.CrawlDelay(); d < 0 || d > MaxCrawlDelay || !ok && d != 0 {
			t.Fatalf("CrawlDelay = %s, %t", d, ok)
		}
		if len(r.Sitemaps()) > maxSitemaps {
			t.Fatalf("%d sitemaps", len(r.Sitemaps()))
		}
		// Equivalent spellings of a path get the same answer.
		if p := "/" + strings.TrimPrefix(path, "/"); rules.Allowed(normalize(p)) != rules.Allowed(p) {
			t.Fatalf("Allowed(%q) != Allowed(normalize)", p)
		}
	})
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"/a*b$", "/axxb"},
		{"/*.php$", "/x.php?y"},
		{"/fish*", "/fish"},
		{"/a$b", "/a$b"},
		{"/%7e*%2F", "/~x%2f"},
		{"*", ""},
		{"/ツ*", "/%E3%83%84/x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, rawPattern, rawPath string) {
		pattern := compile(rawPattern)
		path := strings.ReplaceAll(normalize("/"+rawPath), "$", "%24")
		if n := normalize(path); n != path {
			t.Fatalf("normalize is not idempotent: %q -> %q", path, n)
		}
		if got, want := match(pattern, path), referenceMatch(t, pattern, path); got != want {
			t.Fatalf("match(%q, %q) = %t, reference says %t", pattern, path, got, want)
		}
	})
}

func referenceMatch(t *testing.T, pattern, path string) bool {
	anchored := strings.HasSuffix(pattern, "$")
	pattern = strings.TrimSuffix(pattern, "$")
	var re strings.Builder
	re.WriteString(`(?s)^`)
	for i, piece := range strings.Split(pattern, "*") {
		if i > 0 {
			re.WriteString(`.*`)
		}
		re.WriteString(regexp.QuoteMeta(piece))
	}
	if anchored {
		re.WriteString(`$`)
	}
	rx, err := regexp.Compile(re.String())
	if err != nil {
		t.Fatalf("reference regexp for %q: %v", pattern, err)
	}
	return rx.MatchString(path)
}

package robots

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/sanitize"
)

// rfcExample is the example of RFC 9309 section 5.1.
const rfcExample = `User-Agent: *
Disallow: *.gif$
Disallow: /example/
Allow: /publications/

User-Agent: foobot
Disallow:/
Allow:/example/page.html
Allow:/example/allowed.gif

User-Agent: barbot
User-Agent: bazbot
Disallow: /example/page.html

User-Agent: quxbot

EOF
`

func TestRFCExample(t *testing.T) {
	t.Parallel()
	r := Parse([]byte(rfcExample))
	tests := []struct {
		agent, path string
		want        bool
	}{
		{"foobot", "/example/page.html", true},
		{"foobot", "/example/allowed.gif", true},
		{"foobot", "/example/other.html", false},
		{"foobot", "/", false},
		{"FooBot/2.1 (+https://foo.example)", "/anything", false},
		{"barbot", "/example/page.html", false},
		{"bazbot", "/example/page.html", false},
		{"bazbot", "/example/other.html", true},
		{"quxbot", "/example/page.html", true}, // an empty group allows everything
		{"TrawlBot/0.1 (+https://github.com/trawlhq/trawl)", "/example/page.html", false},
		{"TrawlBot", "/image.gif", false},
		{"TrawlBot", "/image.gif?x", true}, // the '$' anchors the end
		{"TrawlBot", "/publications/x", true},
		{"TrawlBot", "/other", true},
		{"", "/example/", false},
	}
	for _, tc := range tests {
		if got := r.Allowed(tc.agent, tc.path); got != tc.want {
			t.Errorf("Allowed(%q, %q) = %t, want %t", tc.agent, tc.path, got, tc.want)
		}
	}
}

func TestLongestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rules string
		path  string
		want  bool
	}{
		{"allow: /example/page/\ndisallow: /example/page/disallowed.gif", "/example/page/disallowed.gif", false},
		{"allow: /example/page/\ndisallow: /example/page/disallowed.gif", "/example/page/ok.gif", true},
		{"allow: /p\ndisallow: /", "/page", true},
		{"allow: /p\ndisallow: /", "/other", false},
		{"allow: /folder\ndisallow: /folder", "/folder/page", true}, // a tie: allow wins
		{"disallow: /folder\nallow: /folder", "/folder/page", true},
		{"allow: /page\ndisallow: /*.htm", "/page.htm", false},
		{"allow: /page\ndisallow: /*.ph", "/page.php", true},
		{"allow: /$\ndisallow: /", "/", true},
		{"allow: /$\ndisallow: /", "/page.htm", false},
		{"disallow: /", "/robots.txt", true}, // always allowed
		{"disallow:", "/anything", true},     // an empty disallow allows all
		{"disallow: /fish", "/fish", false},
		{"disallow: /fish", "/fish.html", false},
		{"disallow: /fish", "/fish/salmon.html", false},
		{"disallow: /fish", "/Fish.asp", true}, // case-sensitive
		{"disallow: /fish", "/catfish", true},
		{"disallow: /fish*", "/fishheads/yummy.html", false},
		{"disallow: /fish/", "/fish", true},
		{"disallow: /*.php", "/folder/filename.php?parameters", false},
		{"disallow: /*.php$", "/filename.php", false},
		{"disallow: /*.php$", "/filename.php?parameters", true},
		{"disallow: /*.php$", "/filename.php5", true},
		{"disallow: /fish*.php", "/fishheads/catfish.php?parameters", false},
		{"disallow: /fish*.php", "/Fish.PHP", true},
		{"disallow: /*?", "/page?q=1", false},
		{"disallow: /*?", "/page", true},
		{"disallow: /a**b", "/axxb", false},
		{"disallow: /a$b", "/a$b", false}, // a '$' before the end is literal
		{"disallow: /a$b", "/ab", true},
		{"disallow: *", "/x", false},
		{"disallow: x", "/x", false}, // a pattern without its leading slash
		// Percent-encoding is compared normalised (RFC 9309 section 2.2.2).
		{"disallow: /foo/bar/ツ", "/foo/bar/%E3%83%84", false},
		{"disallow: /foo/bar/%E3%83%84", "/foo/bar/%e3%83%84", false},
		{"disallow: /foo/bar/%62%61%7A", "/foo/bar/baz", false},
		{"disallow: /foo/bar/baz", "/foo/bar/%62%61%7A", false},
		{"disallow: /a%2Fb", "/a/b", true}, // an escaped '/' is not a '/'
		{"disallow: /100%", "/100%25", false},
		{"disallow: /a b", "/a%20b", false},
	}
	for _, tc := range tests {
		r := Parse([]byte("user-agent: *\n" + tc.rules + "\n"))
		if got := r.Allowed("TrawlBot", tc.path); got != tc.want {
			t.Errorf("rules %q: Allowed(%q) = %t, want %t", tc.rules, tc.path, got, tc.want)
		}
	}
}

func TestParseSyntax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, agent, path string
		want                    bool
	}{
		{"keys are case-insensitive", "USER-AGENT: *\nDISALLOW: /x", "a", "/x", false},
		{"agents are case-insensitive", "User-agent: TRAWLBOT\nDisallow: /x", "trawlbot/1", "/x", false},
		{"agent line with version", "User-agent: TrawlBot/3.0\nDisallow: /x", "TrawlBot", "/x", false},
		{"agent is a token, not a prefix", "User-agent: Trawl\nDisallow: /x", "TrawlBot", "/x", true},
		{"specific group beats *", "User-agent: *\nDisallow: /\n\nUser-agent: trawlbot\nDisallow: /private", "TrawlBot", "/public", true},
		{"matching groups merge", "User-agent: trawlbot\nDisallow: /a\n\nUser-agent: other\nDisallow: /b\n\nUser-agent: trawlbot\nDisallow: /c", "TrawlBot", "/c", false},
		{"* groups merge", "User-agent: *\nDisallow: /a\nUser-agent: *\nDisallow: /c", "x", "/c", false},
		{"no group for us and no *", "User-agent: other\nDisallow: /", "TrawlBot", "/x", true},
		{"rules before any agent are ignored", "Disallow: /x\nUser-agent: *\nDisallow: /y", "a", "/x", true},
		{"comments", "# hi\nUser-agent: * # everyone\nDisallow: /x # not x", "a", "/x", false},
		{"comment hides the rule", "User-agent: *\n# Disallow: /x", "a", "/x", true},
		{"CR line endings", "User-agent: *\rDisallow: /x\r", "a", "/x", false},
		{"CRLF line endings", "User-agent: *\r\nDisallow: /x\r\n", "a", "/x", false},
		{"BOM", "\xef\xbb\xbfUser-agent: *\nDisallow: /x", "a", "/x", false},
		{"partial BOM EF BB", "\xef\xbbUser-agent: *\nDisallow: /x", "a", "/x", false},
		{"partial BOM EF", "\xefUser-agent: *\nDisallow: /x", "a", "/x", false},
		{"partial BOM before our group", "\xef\xbbUser-agent: trawlbot\nDisallow: /x\n\nUser-agent: *\nDisallow: /y", "TrawlBot", "/x", false},
		{"partial BOM cleaned to U+FFFD", sanitize.Text("\xef\xbbUser-agent: *\nDisallow: /x"), "a", "/x", false},
		{"BOM only", "\xef\xbb\xbf", "a", "/x", true},
		{"not a BOM start", "\xbb\xbfUser-agent: *\nDisallow: /x", "a", "/x", true},
		{"two BOMs", "\xef\xbb\xbf\xef\xbb\xbfUser-agent: *\nDisallow: /x", "a", "/x", true},
		{"missing colon", "User-agent *\nDisallow /x", "a", "/x", false},
		{"misspelt disallow", "User-agent: *\nDissallow: /x", "a", "/x", false},
		{"user agent with a space", "User agent: *\nDisallow: /x", "a", "/x", false},
		{"sitemap does not end an agent list", "User-agent: a\nSitemap: http://x/s.xml\nUser-agent: b\nDisallow: /x", "a", "/x", false},
		{"unknown lines do not end a group", "User-agent: a\nFoo: bar\nDisallow: /x", "a", "/x", false},
		{"blank lines do not end a group", "User-agent: a\n\nDisallow: /x", "a", "/x", false},
		{"a rule ends the agent list", "User-agent: a\nDisallow: /x\nUser-agent: b\nDisallow: /y", "b", "/x", true},
		{"html instead of robots.txt", "<html><body>Not found</body></html>", "a", "/x", true},
		{"binary junk", "\x00\xff\xfe\x01Disallow: /", "a", "/x", true},
		{"empty", "", "a", "/x", true},
	}
	for _, tc := range tests {
		if got := Parse([]byte(tc.file)).Allowed(tc.agent, tc.path); got != tc.want {
			t.Errorf("%s: Allowed(%q, %q) = %t, want %t", tc.name, tc.agent, tc.path, got, tc.want)
		}
	}
}

func TestCrawlDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		want   time.Duration
		wantOK bool
	}{
		{"User-agent: *\nCrawl-delay: 5", 5 * time.Second, true},
		{"User-agent: *\nCrawl-delay: 0.5", 500 * time.Millisecond, true},
		{"User-agent: *\ncrawl-delay:10 # slow", 10 * time.Second, true},
		{"User-agent: *\nCrawl-delay: -1", 0, false},
		{"User-agent: *\nCrawl-delay: soon", 0, false},
		{"User-agent: *\nCrawl-delay: NaN", 0, false},
		{"User-agent: *\nCrawl-delay: 1e12", MaxCrawlDelay, true},
		{"User-agent: *\nCrawl-delay: Inf", MaxCrawlDelay, true},
		{"Crawl-delay: 5\nUser-agent: *", 0, false}, // outside a group
		{"User-agent: other\nCrawl-delay: 5", 0, false},
		{"User-agent: *\nCrawl-delay: 9\n\nUser-agent: trawlbot\nCrawl-delay: 2", 2 * time.Second, true},
		{"User-agent: trawlbot\nCrawl-delay: 2\n\nUser-agent: trawlbot\nCrawl-delay: 7", 7 * time.Second, true},
	}
	for _, tc := range tests {
		got, ok := Parse([]byte(tc.file)).For("TrawlBot/0.1").CrawlDelay()
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%q: CrawlDelay = %s, %t, want %s, %t", tc.file, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestSitemaps(t *testing.T) {
	t.Parallel()
	r := Parse([]byte("Sitemap: https://example.com/a.xml\nUser-agent: *\nDisallow: /\nsitemap:https://example.com/b.xml.gz\nSITEMAP: https://example.com/a.xml\nSitemap:\nUser-agent: other\nSite-map: https://example.com/c.xml # c\n"))
	want := []string{"https://example.com/a.xml", "https://example.com/b.xml.gz", "https://example.com/c.xml"}
	if diff := cmp.Diff(want, r.Sitemaps()); diff != "" {
		t.Errorf("Sitemaps (-want +got):\n%s", diff)
	}
	var b strings.Builder
	for i := range 2 * maxSitemaps {
		b.WriteString("Sitemap: https://example.com/s" + strconv.Itoa(i) + ".xml\n")
	}
	if n := len(Parse([]byte(b.String())).Sitemaps()); n != maxSitemaps {
		t.Errorf("%d Sitemap lines kept, want the limit %d", n, maxSitemaps)
	}
}

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	head := "User-agent: *\nDisallow: /early\n"
	body := head + strings.Repeat("# "+strings.Repeat("x", 97)+"\n", (MaxBytes-len(head))/100-1)
	pad := func(line string) string { // body, then a comment, then line, ending exactly at MaxBytes
		return body + strings.Repeat("#", MaxBytes-len(body)-len(line)-1) + "\n" + line
	}
	atLimit := pad("Disallow: /at-limit\n")
	if len(atLimit) != MaxBytes {
		t.Fatalf("test file is %d bytes", len(atLimit))
	}
	r := Parse([]byte(atLimit + "Disallow: /late\n"))
	if !r.Truncated() || r.Allowed("a", "/early") || r.Allowed("a", "/at-limit") || !r.Allowed("a", "/late") {
		t.Errorf("truncated %t; allowed: early %t, at-limit %t, late %t; want true, false, false, true",
			r.Truncated(), r.Allowed("a", "/early"), r.Allowed("a", "/at-limit"), r.Allowed("a", "/late"))
	}
	cut := Parse([]byte(pad("Disallow: /cut")[:MaxBytes] + "-in-the-middle\n"))
	if !cut.Allowed("a", "/cut") || !cut.Allowed("a", "/cut-in-the-middle") {
		t.Error("a line cut by the limit was applied")
	}
	small := Parse([]byte(body + "Disallow: /last")) // no final newline
	if small.Truncated() || small.Allowed("a", "/early") || small.Allowed("a", "/last") {
		t.Errorf("a file under the limit: truncated %t, early allowed %t, last allowed %t", small.Truncated(), small.Allowed("a", "/early"), small.Allowed("a", "/last"))
	}
	// At least 500 KiB are parsed, as RFC 9309 requires.
	if MaxBytes < 500<<10 {
		t.Errorf("MaxBytes = %d, below the RFC's 500 KiB", MaxBytes)
	}
}

func TestFromStatus(t *testing.T) {
	t.Parallel()
	body := []byte("User-agent: *\nDisallow: /x\n")
	tests := []struct {
		status int
		path   string
		want   bool
	}{
		{200, "/x", false},
		{200, "/y", true},
		{404, "/x", true},
		{301, "/x", true}, // redirects exhausted: unavailable
		{401, "/x", true},
		{403, "/x", true},
		{500, "/y", false},
		{503, "/y", false},
		{0, "/y", false},
		{503, "/robots.txt", true},
	}
	for _, tc := range tests {
		if got := FromStatus(tc.status, body).Allowed("a", tc.path); got != tc.want {
			t.Errorf("FromStatus(%d).Allowed(%q) = %t, want %t", tc.status, tc.path, got, tc.want)
		}
	}
	if !AllowAll().Allowed("a", "/x") || DisallowAll().Allowed("a", "/x") {
		t.Error("AllowAll / DisallowAll are wrong")
	}
	var zero Robots
	if !zero.Allowed("a", "/x") {
		t.Error("the zero Robots disallows")
	}
}

func TestProductToken(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"TrawlBot/0.1 (+https://github.com/trawlhq/trawl)": "TrawlBot",
		"  Googlebot-Image/1.0":                            "Googlebot-Image",
		"my_bot":                                           "my_bot",
		"Mozilla/5.0 (compatible; TrawlBot/0.1)":           "Mozilla",
		"":                                                 "",
		"/x":                                               "",
	} {
		if got := ProductToken(in); got != want {
			t.Errorf("ProductToken(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHostilePatterns: patterns built to make a backtracking matcher explode finish at once.
func TestHostilePatterns(t *testing.T) {
	t.Parallel()
	pattern := "/" + strings.Repeat("*a", 200) + "*b$"
	path := "/" + strings.Repeat("a", 20000)
	r := Parse([]byte("User-agent: *\nDisallow: " + pattern + "\n"))
	if !r.Allowed("x", path) {
		t.Error("pathological pattern matched a path without 'b'")
	}
	if r.Allowed("x", path+"b") {
		t.Error("pathological pattern did not match a path ending in 'b'")
	}
}

// reference matches a compiled pattern with a regular expression, as an oracle for match.
func reference(pattern, path string) bool {
	anchored := strings.HasSuffix(pattern, "$")
	pattern = strings.TrimSuffix(pattern, "$")
	var re strings.Builder
	re.WriteString(`^`)
	for i, piece := range strings.Split(pattern, "*") {
		if i > 0 {
			re.WriteString(`.*`)
		}
		re.WriteString(regexp.QuoteMeta(piece))
	}
	if anchored {
		re.WriteString(`$`)
	}
	return regexp.MustCompile(re.String()).MatchString(path)
}

func TestMatchAgainstReference(t *testing.T) {
	t.Parallel()
	patterns := []string{"/", "/a", "/a*", "/a*b", "/a*b$", "/*.php$", "/a*a*a", "/ab*ba$", "/*", "/*$", "/$", "/a*b*c*"}
	paths := []string{"/", "/a", "/ab", "/aab", "/abab", "/aba", "/x.php", "/x.php?y", "/aaa", "/abba", "/ba", "/abc", "/acb"}
	for _, p := range patterns {
		for _, s := range paths {
			if got, want := match(p, s), reference(p, s); got != want {
				t.Errorf("match(%q, %q) = %t, reference says %t", p, s, got, want)
			}
		}
	}
}

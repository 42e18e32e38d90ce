package crawl

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/crawlurl"
)

const testPage = "http://example.com/dir/page.html"

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", s, err)
	}
	return u
}

func TestExtractHTMLTitle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		html string
		want string
	}{
		{name: "simple", html: "<html><head><title>Hello</title></head></html>", want: "Hello"},
		{name: "whitespace collapsed", html: "<title>\n  Hello \t\r\n  World  </title>", want: "Hello World"},
		{name: "entities", html: "<title>Tom &amp; Jerry &lt;3 &eacute;t&eacute;&nbsp;!</title>", want: "Tom & Jerry <3 été !"},
		{name: "tags are text", html: "<title>a <b>b</b></title>", want: "a <b>b</b>"},
		{name: "first title wins", html: "<title>one</title><title>two</title>", want: "one"},
		{name: "title in body", html: "<body><p>x</p><title>late</title></body>", want: "late"},
		{name: "svg title ignored", html: "<svg><title>icon</title></svg><title>page</title>", want: "page"},
		{name: "template title ignored", html: "<template><title>tpl</title></template><title>page</title>", want: "page"},
		{name: "none", html: "<p>no title</p>", want: ""},
		{name: "empty", html: "<title></title>", want: ""},
		{name: "unclosed", html: "<title>runs <p>to the end", want: "runs <p>to the end"},
		{name: "uppercase tag", html: "<TITLE>Shout</TiTlE>", want: "Shout"},
		{name: "self-closing is still raw", html: "<title/>text</title>", want: "text"},
		{name: "nul", html: "<title>a\x00b</title>", want: "a\uFFFDb"},
		{name: "invalid utf8", html: "<title>a\xff\xfeb</title>", want: "a\uFFFDb"},
		{name: "control characters", html: "<title>a\x01\x1b[31mb\x7f</title>", want: "a[31mb"},
		{name: "long", html: "<title>" + strings.Repeat("x", 5000) + "</title>", want: strings.Repeat("x", MaxTitleBytes)},
		{name: "long multibyte", html: "<title>" + strings.Repeat("é", 1000) + "</title>", want: strings.Repeat("é", MaxTitleBytes/2)},
		{name: "long three byte", html: "<title>" + strings.Repeat("€", 1000) + "</title>", want: strings.Repeat("€", MaxTitleBytes/3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ExtractHTML([]byte(tt.html), mustURL(t, testPage), crawlurl.Default, ExtractLimits{})
			if diff := cmp.Diff(tt.want, got.Title); diff != "" {
				t.Errorf("title mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractHTMLText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		html string
		want string
	}{
		{name: "paragraphs", html: "<p>Hello <b>world</b></p><p>Again</p>", want: "Hello world\nAgain"},
		{name: "inline elements glue", html: "<span>un</span><em>believ</em><a href=x>able</a>", want: "unbelievable"},
		{name: "whitespace collapsed", html: "<p>  a \n\t b  </p>\n\n<p>\n c </p>", want: "a b\nc"},
		{name: "block beats space", html: "a <div> b </div> c", want: "a\nb\nc"},
		{name: "br", html: "line one<br>line two<br/>line three", want: "line one\nline two\nline three"},
		{name: "table cells", html: "<table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table>", want: "a b\nc d"},
		{name: "list", html: "<ul><li>one<li>two</ul>after", want: "one\ntwo\nafter"},
		{name: "entities", html: "<p>a&amp;b &lt;tag&gt; caf&eacute; &#x1F642;</p>", want: "a&b <tag> café 🙂"},
		{name: "nbsp is space", html: "a&nbsp;&nbsp;b\u00a0c", want: "a b c"},
		{name: "unicode spaces", html: "a\u2003b\u3000c", want: "a b c"},
		{name: "script skipped", html: "before<script>var s = '<p>not text</p>';</script>after", want: "beforeafter"},
		{name: "script with uppercase end", html: "a <SCRIPT type=x>alert(1)</ScRiPt> b", want: "a b"},
		{name: "style skipped", html: "<style>p { color: red }</style><p>text</p>", want: "text"},
		{name: "noscript skipped", html: "<noscript>Enable JavaScript</noscript><p>text</p>", want: "text"},
		{name: "template skipped", html: "<template><p>hidden<template>nested</template>still hidden</p></template>shown", want: "shown"},
		{name: "svg skipped", html: "<p>a</p><svg><g><text>label</text></g></svg><p>b</p>", want: "a\nb"},
		{name: "nested svg", html: "<svg><svg>x</svg>y</svg>z", want: "z"},
		{name: "self-closing svg", html: "a<svg/>b", want: "ab"},
		{name: "iframe skipped", html: "a <iframe src=x>fallback</iframe> b", want: "a b"},
		{name: "object skipped", html: "a <object data=x><p>fallback</p></object> b", want: "a b"},
		{name: "head skipped", html: "<html><head><meta charset=utf-8><title>T</title><style>x</style><link rel=x></head><body>body</body></html>", want: "body"},
		{name: "head without end", html: "<head><title>T</title><body>body", want: "body"},
		{name: "head closed by body tag", html: "<head><title>T</title><div>body</div>", want: "body"},
		{name: "text in head starts body", html: "<head><title>T</title>stray<p>more</p>", want: "stray\nmore"},
		{name: "late head ignored", html: "<p>a</p><head>b</head>c", want: "a\nbc"},
		{name: "comments skipped", html: "a<!-- hidden -->b<!--- also -->c", want: "abc"},
		{name: "doctype skipped", html: "<!DOCTYPE html>text", want: "text"},
		{name: "textarea shown", html: "<textarea>typed <b>here</b></textarea>", want: "typed <b>here</b>"},
		{name: "nul dropped", html: "a\x00b<p>c\x00</p>", want: "ab\nc"},
		{name: "invalid utf8", html: "<p>caf\xe9 \xff\xfe ok</p>", want: "caf\uFFFD \uFFFD ok"},
		{name: "control characters dropped", html: "a\x01b\x1b[0mc\x7fd\u0085e", want: "ab[0mcd e"},
		{name: "vertical tab is space", html: "a\vb", want: "a b"},
		{name: "empty", html: "", want: ""},
		{name: "only whitespace", html: " \n <p> </p> ", want: ""},
		{name: "unclosed tags", html: "<div><p><b>bold<i>italic<p>next", want: "bolditalic\nnext"},
		{name: "unclosed script swallows rest", html: "a<script>b<p>c", want: "a"},
		{name: "unclosed comment", html: "a<!-- b", want: "a"},
		{name: "garbage", html: "<<<>>> </ > <a <b <p>text</p> < 3 & &amp x", want: "<<<>>> text\n< 3 & & x"},
		{name: "plaintext", html: "a<plaintext><p>all text</p>", want: "a\n<p>all text</p>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ExtractHTML([]byte(tt.html), mustURL(t, testPage), crawlurl.Default, ExtractLimits{})
			if diff := cmp.Diff(tt.want, got.Text); diff != "" {
				t.Errorf("text mismatch (-want +got):\n%s", diff)
			}
			if got.TextTruncated {
				t.Error("TextTruncated set")
			}
		})
	}
}

func TestExtractHTMLLinks(t *testing.T) {
	t.Parallel()
	long := "/" + strings.Repeat("a", 2000)
	tests := []struct {
		name  string
		page  string // default testPage
		canon crawlurl.Canonicalizer
		html  string
		want  []string
	}{
		{name: "relative", html: `<a href="other.html">x</a><a href="../up">y</a><a href="/root">z</a>`, want: []string{
			"http://example.com/dir/other.html", "http://example.com/up", "http://example.com/root",
		}},
		{name: "absolute and scheme relative", html: `<a href="HTTPS://Other.COM:443/a">x</a><a href="//cdn.example.net/b">y</a>`, want: []string{
			"https://other.com/a", "http://cdn.example.net/b",
		}},
		{name: "query only", html: `<a href="?page=2">next</a>`, want: []string{"http://example.com/dir/page.html?page=2"}},
		{name: "fragments merged", html: `<a href="a#x">1</a><a href="a#y">2</a><a href="a">3</a>`, want: []string{"http://example.com/dir/a"}},
		{name: "fragment only is the page", html: `<a href="#top">top</a>`, want: []string{"http://example.com/dir/page.html"}},
		{name: "dedup after canonicalisation", html: `<a href="/A/./b">1</a><a href="http://EXAMPLE.com:80/A/b">2</a><a href="/A/%62">3</a>`, want: []string{"http://example.com/A/b"}},
		{name: "first seen order", html: `<a href=c>c</a><a href=a>a</a><a href=c>c</a><a href=b>b</a>`, want: []string{
			"http://example.com/dir/c", "http://example.com/dir/a", "http://example.com/dir/b",
		}},
		{name: "area", html: `<map><area href="/map" shape=rect></map>`, want: []string{"http://example.com/map"}},
		{name: "nofollow kept", html: `<a rel="nofollow" href="/nf">x</a>`, want: []string{"http://example.com/nf"}},
		{name: "self-closing a", html: `<a href="/sc"/>`, want: []string{"http://example.com/sc"}},
		{name: "first href attribute", html: `<a href="/one" href="/two">x</a>`, want: []string{"http://example.com/one"}},
		{name: "unquoted and uppercase", html: `<A HREF=/up>x</A>`, want: []string{"http://example.com/up"}},
		{name: "entities in href", html: `<a href="/s?a=1&amp;b=2&lt">x</a>`, want: []string{"http://example.com/s?a=1&b=2%3C"}},
		{name: "whitespace in href", html: "<a href=\"  \n /spaced \t\">x</a><a href=\"/li\nne\">y</a>", want: []string{
			"http://example.com/spaced", "http://example.com/line",
		}},
		{name: "unusable hrefs dropped", html: `<a href="javascript:alert(1)">1</a><a href=" JavaScript:void(0)">2</a>` +
			`<a href="data:text/html,hi">3</a><a href="mailto:a@example.com">4</a><a href="tel:123">5</a>` +
			`<a href="ftp://example.com/">6</a><a href="">7</a><a>8</a><a name=x>9</a><a href="http://exa mple.com/">10</a><a href="/ok">11</a>`,
			want: []string{"http://example.com/ok"}},
		{name: "session ids stripped", html: `<a href="/shop;jsessionid=ABC?item=1&PHPSESSID=x">x</a>`, want: []string{"http://example.com/shop?item=1"}},
		{name: "canonicalizer used", canon: crawlurl.Canonicalizer{SortQuery: true}, html: `<a href="/s?b=2&a=1&sid=3">x</a>`, want: []string{"http://example.com/s?a=1&b=2&sid=3"}},
		{name: "base href", html: `<head><base href="http://base.example/sub/"></head><a href="x">x</a><a href="/y">y</a>`, want: []string{
			"http://base.example/sub/x", "http://base.example/y",
		}},
		{name: "relative base href", html: `<base href="/other/"><a href="x">x</a>`, want: []string{"http://example.com/other/x"}},
		{name: "base after links", html: `<a href="x">x</a><a href="http://abs.example/">a</a><base href="/b/"><a href="y">y</a>`, want: []string{
			"http://example.com/b/x", "http://abs.example/", "http://example.com/b/y",
		}},
		{name: "first base wins", html: `<base href="/one/"><base href="/two/"><a href="x">x</a>`, want: []string{"http://example.com/one/x"}},
		{name: "base without href skipped", html: `<base target="_blank"><base href="/two/"><a href="x">x</a>`, want: []string{"http://example.com/two/x"}},
		{name: "javascript base ignored", html: `<base href="javascript:alert(1)"><a href="x">x</a>`, want: []string{"http://example.com/dir/x"}},
		{name: "ftp base ignored", html: `<base href="ftp://files.example/"><base href="/two/"><a href="x">x</a>`, want: []string{"http://example.com/dir/x"}},
		{name: "base in template ignored", html: `<template><base href="/t/"></template><a href="x">x</a>`, want: []string{"http://example.com/dir/x"}},
		{name: "links in noscript", html: `<noscript><a href="/ns">no js</a><p><a href='/ns2'>more</a></noscript>`, want: []string{
			"http://example.com/ns", "http://example.com/ns2",
		}},
		{name: "links in svg", html: `<svg><a href="/svg">x</a></svg>`, want: []string{"http://example.com/svg"}},
		{name: "no links in script", html: `<script>document.write('<a href="/js">x</a>')</script>`, want: nil},
		{name: "no links in comment", html: `<!-- <a href="/c">x</a> -->`, want: nil},
		{name: "unfinished tag at eof", html: `<a href="/ok">ok</a><a href=/eof`, want: []string{"http://example.com/ok"}},
		{name: "unclosed a", html: `<a href="/1">one<a href="/2">two<div><a href="/3">`, want: []string{
			"http://example.com/1", "http://example.com/2", "http://example.com/3",
		}},
		{name: "nul and invalid utf8 in href", html: "<a href=\"/a\x00b\xff\">x</a>", want: []string{"http://example.com/a%EF%BF%BDb%FF"}},
		{name: "2000 character url kept", html: `<a href="` + long + `">x</a>`, want: []string{"http://example.com" + long}},
		{name: "too long url dropped", html: `<a href="` + long + long + `">x</a><a href="http://example.com/` + strings.Repeat("b", crawlurl.MaxURLLength) + `">y</a>`, want: nil},
		{name: "nil page url", page: "-", html: `<a href="/rel">x</a><a href="https://abs.example/">y</a>`, want: []string{"https://abs.example/"}},
		{name: "nil page url with base", page: "-", html: `<base href="https://b.example/d/"><a href="x">x</a>`, want: []string{"https://b.example/d/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var page *url.URL
			switch tt.page {
			case "":
				page = mustURL(t, testPage)
			case "-":
			default:
				page = mustURL(t, tt.page)
			}
			canon := tt.canon
			if canon == (crawlurl.Canonicalizer{}) {
				canon = crawlurl.Default
			}
			got := ExtractHTML([]byte(tt.html), page, canon, ExtractLimits{})
			if diff := cmp.Diff(tt.want, got.Links); diff != "" {
				t.Errorf("links mismatch (-want +got):\n%s", diff)
			}
			if got.LinksTruncated {
				t.Error("LinksTruncated set")
			}
		})
	}
}

func TestExtractHTMLLimits(t *testing.T) {
	t.Parallel()
	links := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `<a href="/p%d">%d</a> `, i, i)
		}
		return b.String()
	}
	wantLinks := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("http://example.com/p%d", i)
		}
		return out
	}
	tests := []struct {
		name          string
		html          string
		lim           ExtractLimits
		wantText      string // checked when set
		wantTextLen   int    // checked when set
		wantLinks     []string
		wantTextCut   bool
		wantLinksCut  bool
		checkLinks    bool
		wantLinkCount int // checked when set
	}{
		{name: "text fits exactly", html: "<p>abc</p><p>def</p>", lim: ExtractLimits{MaxTextBytes: 7}, wantText: "abc\ndef"},
		{name: "text cut", html: "<p>abc</p><p>def</p>", lim: ExtractLimits{MaxTextBytes: 6}, wantText: "abc\nde", wantTextCut: true},
		{name: "text cut after a space inside a run", html: "<p>ab cd</p>", lim: ExtractLimits{MaxTextBytes: 3}, wantText: "ab", wantTextCut: true},
		{name: "runs keep single spaces, collapse the rest", html: "<p>a b  c\td \u00a0e</p>", wantText: "a b c d e"},
		{name: "text cut after separator", html: "<p>abc</p><p>def</p>", lim: ExtractLimits{MaxTextBytes: 4}, wantText: "abc", wantTextCut: true},
		{name: "text cut in word", html: "abcdef", lim: ExtractLimits{MaxTextBytes: 4}, wantText: "abcd", wantTextCut: true},
		{name: "text cut on rune boundary", html: "aé€🙂", lim: ExtractLimits{MaxTextBytes: 8}, wantText: "aé€", wantTextCut: true},
		{name: "text cut before emoji", html: "🙂🙂", lim: ExtractLimits{MaxTextBytes: 7}, wantText: "🙂", wantTextCut: true},
		{name: "trailing space not truncation", html: "abc   ", lim: ExtractLimits{MaxTextBytes: 3}, wantText: "abc"},
		{name: "skipped text does not count", html: "abc<script>lots of script</script>", lim: ExtractLimits{MaxTextBytes: 3}, wantText: "abc"},
		{name: "default text limit", html: "<p>" + strings.Repeat("x", DefaultMaxTextBytes+10) + "</p>", wantTextLen: DefaultMaxTextBytes, wantTextCut: true},
		{name: "links fit exactly", html: links(3), lim: ExtractLimits{MaxLinks: 3}, checkLinks: true, wantLinks: wantLinks(3)},
		{name: "links cut", html: links(5), lim: ExtractLimits{MaxLinks: 3}, checkLinks: true, wantLinks: wantLinks(3), wantLinksCut: true},
		{name: "duplicates do not count", html: links(3) + links(3), lim: ExtractLimits{MaxLinks: 3}, checkLinks: true, wantLinks: wantLinks(3)},
		{name: "dropped links do not count", html: links(2) + `<a href="javascript:x">j</a><a href="/p0#x">d</a>`, lim: ExtractLimits{MaxLinks: 2}, checkLinks: true, wantLinks: wantLinks(2)},
		{name: "base after cut resolves again", html: links(3) + `<base href="/b/">`, lim: ExtractLimits{MaxLinks: 2}, checkLinks: true,
			wantLinks: []string{"http://example.com/p0", "http://example.com/p1"}, wantLinksCut: true},
		{name: "10000 links default limit", html: links(10000), wantLinkCount: DefaultMaxLinks, wantLinksCut: true},
		{name: "negative limits mean default", html: links(10), lim: ExtractLimits{MaxTextBytes: -1, MaxLinks: -1}, checkLinks: true, wantLinks: wantLinks(10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ExtractHTML([]byte(tt.html), mustURL(t, testPage), crawlurl.Default, tt.lim)
			if tt.wantText != "" {
				if diff := cmp.Diff(tt.wantText, got.Text); diff != "" {
					t.Errorf("text mismatch (-want +got):\n%s", diff)
				}
			}
			if tt.wantTextLen != 0 && len(got.Text) != tt.wantTextLen {
				t.Errorf("len(Text) = %d, want %d", len(got.Text), tt.wantTextLen)
			}
			if got.TextTruncated != tt.wantTextCut {
				t.Errorf("TextTruncated = %v, want %v", got.TextTruncated, tt.wantTextCut)
			}
			if tt.checkLinks {
				if diff := cmp.Diff(tt.wantLinks, got.Links); diff != "" {
					t.Errorf("links mismatch (-want +got):\n%s", diff)
				}
			}
			if tt.wantLinkCount != 0 && len(got.Links) != tt.wantLinkCount {
				t.Errorf("len(Links) = %d, want %d", len(got.Links), tt.wantLinkCount)
			}
			if got.LinksTruncated != tt.wantLinksCut {
				t.Errorf("LinksTruncated = %v, want %v", got.LinksTruncated, tt.wantLinksCut)
			}
		})
	}
}

func TestExtractHTMLHostile(t *testing.T) {
	t.Parallel()
	// Each must finish quickly and produce safe output; checkExtracted
	// verifies the invariants.
	inputs := map[string]string{
		"nul bytes":           strings.Repeat("\x00<\x00a href=\x00/x\x00>\x00", 100),
		"invalid utf8":        "<title>\xff\xfe</title><p>\xc0\x80\xed\xa0\x80</p><a href=\"/\xff\">x</a>",
		"deep nesting":        strings.Repeat("<div><span><b>", 10000) + "deep" + strings.Repeat("</b></span></div>", 10000),
		"nested garbage":      strings.Repeat("<a href=<a href=<p <<!-- -->", 500),
		"unclosed everywhere": "<html><head><title>t<body><p><a href='/x",
		"many attributes":     "<a " + strings.Repeat(`x="y" `, 5000) + `href="/x">x</a>`,
		"huge attribute":      `<a href="/` + strings.Repeat("x", 100000) + `">x</a>`,
		"unterminated quote":  `<a href="/x>text</a><p>more`,
		"svg never closed":    "<p>a</p><svg><p>b</p>" + strings.Repeat("<svg>", 1000),
		"script in title":     "<title><script>alert(1)</script></title>",
		"cdata":               "<![CDATA[x]]><p>y</p>",
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := ExtractHTML([]byte(in), mustURL(t, testPage), crawlurl.Default, ExtractLimits{MaxTextBytes: 1000, MaxLinks: 10})
			checkExtracted(t, got, 1000, 10)
		})
	}
}

// checkExtracted verifies the invariants of an Extracted made with the
// Default canonicalizer.
func checkExtracted(t *testing.T, ex Extracted, maxText, maxLinks int) {
	t.Helper()
	for field, s := range map[string]string{"Title": ex.Title, "Text": ex.Text} {
		if !utf8.ValidString(s) {
			t.Fatalf("%s %q is not valid UTF-8", field, s)
		}
		for _, r := range s {
			if r < 0x20 && r != '\n' || r == 0x7f {
				t.Fatalf("%s %q contains control character %U", field, s, r)
			}
		}
		if strings.TrimSpace(s) != s {
			t.Fatalf("%s %q has surrounding white space", field, s)
		}
	}
	if strings.Contains(ex.Title, "\n") {
		t.Fatalf("Title %q contains a newline", ex.Title)
	}
	if len(ex.Title) > MaxTitleBytes {
		t.Fatalf("len(Title) = %d > %d", len(ex.Title), MaxTitleBytes)
	}
	if len(ex.Text) > maxText {
		t.Fatalf("len(Text) = %d > %d", len(ex.Text), maxText)
	}
	if len(ex.Links) > maxLinks {
		t.Fatalf("len(Links) = %d > %d", len(ex.Links), maxLinks)
	}
	seen := make(map[string]bool)
	for _, l := range ex.Links {
		c, err := crawlurl.Canonicalize(l)
		if err != nil || c != l {
			t.Fatalf("link %q is not canonical: %q, %v", l, c, err)
		}
		if seen[l] {
			t.Fatalf("duplicate link %q", l)
		}
		seen[l] = true
	}
}

func FuzzExtractHTML(f *testing.F) {
	for _, s := range []string{
		"",
		"<html><head><title>T</title><base href=/b/></head><body><p>Hello <a href=x#y>x</a></p></body></html>",
		"<a href=x",
		"<title>\x00\xff</title>\x00<p>\xfe</p>",
		"<script>x<a href=/no></script><noscript><a href=/ns>n</a></noscript>",
		"<svg><title>s</title><a href=/svg>s</a></svg><template><p>t</template>",
		`<a href="javascript:alert(1)">j</a><a href="data:,x">d</a><a href="//other.example/">o</a>`,
		"<head>stray<p>text<plaintext><a href=/p>",
	} {
		f.Add([]byte(s), uint16(64), uint8(3))
	}
	page, err := url.Parse(testPage)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, maxText uint16, maxLinks uint8) {
		lim := ExtractLimits{MaxTextBytes: int(maxText), MaxLinks: int(maxLinks)}
		got := ExtractHTML(body, page, crawlurl.Default, lim)
		if lim.MaxTextBytes == 0 {
			lim.MaxTextBytes = DefaultMaxTextBytes
		}
		if lim.MaxLinks == 0 {
			lim.MaxLinks = DefaultMaxLinks
		}
		checkExtracted(t, got, lim.MaxTextBytes, lim.MaxLinks)
	})
}

// benchPage is a synthetic page of about 8 KB with 10 links.
func benchPage() []byte {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Benchmark page &amp; friends</title>`)
	b.WriteString(`<link rel="stylesheet" href="/style.css"><style>body { font-family: sans-serif; } .nav a { color: #333; }</style>`)
	b.WriteString(`<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}</script></head><body>`)
	b.WriteString(`<nav class="nav">`)
	for i := range 5 {
		fmt.Fprintf(&b, `<a href="/section/%d/index.html?ref=nav#top">Section %d</a> `, i, i)
	}
	b.WriteString(`</nav><main><article><h1>A reasonably typical article</h1>`)
	para := `<p>Lorem ipsum dolor sit amet, <em>consectetur</em> adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat &mdash; caf&eacute;.</p>` + "\n"
	for b.Len() < 7000 {
		b.WriteString(para)
	}
	b.WriteString(`</article></main><footer>`)
	for i := range 5 {
		fmt.Fprintf(&b, `<a href="https://other%d.example.com/path/page%d.html">Partner %d</a> | `, i, i, i)
	}
	b.WriteString(`<p>&copy; 2024 Example Inc.</p></footer></body></html>`)
	return []byte(b.String())
}

func BenchmarkExtractHTML(b *testing.B) {
	body := benchPage()
	page := mustURL(b, "https://www.example.com/articles/2024/typical.html")
	ex := ExtractHTML(body, page, crawlurl.Default, ExtractLimits{})
	if len(ex.Links) != 10 {
		b.Fatalf("got %d links, want 10: %q", len(ex.Links), ex.Links)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ExtractHTML(body, page, crawlurl.Default, ExtractLimits{})
	}
}

func TestContainsFold(t *testing.T) {
	for _, c := range []struct {
		s, sub string
		want   bool
	}{
		{`<meta name="robots">`, "robots", true},
		{`<META NAME="ROBOTS">`, "robots", true},
		{`<meta name="Robots">`, "robots", true},
		{`<meta name="rObOtS">`, "robots", true},
		{`<meta name="robot">`, "robots", false},
		{`<BASE href="/">`, "<base", true},
		{`<meta charset="utf-8">`, "robots", false},
		{`rrrobots`, "robots", true},
		{`RRRobots`, "robots", true},
	} {
		if got := containsFold([]byte(c.s), c.sub); got != c.want {
			t.Errorf("containsFold(%q, %q) = %v, want %v", c.s, c.sub, got, c.want)
		}
	}
}

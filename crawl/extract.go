package crawl

import (
	"bytes"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/trawlhq/trawl/crawlurl"
)

// Defaults for a zero ExtractLimits field, and the fixed title limit.
const (
	DefaultMaxTextBytes = 1 << 20
	DefaultMaxLinks     = 5000
	MaxTitleBytes       = 1000
)

// Extracted is what ExtractHTML finds in a page. Title and Text are valid
// UTF-8 without NUL or other control characters; Links are canonical,
// deduplicated, in document order.
type Extracted struct {
	Title          string
	Text           string
	Links          []string
	TextTruncated  bool // the visible text was longer than MaxTextBytes
	LinksTruncated bool // the page had more than MaxLinks distinct links
	// MetaRobots are the contents of the page's robots meta tags: <meta name="robots"> and
	// <meta name> equal to ExtractLimits.RobotsToken, case-insensitive (robots.NoFollow reads them).
	MetaRobots []string
}

// ExtractLimits bounds what ExtractHTML keeps. A zero (or negative) field
// means its default: DefaultMaxTextBytes, DefaultMaxLinks.
type ExtractLimits struct {
	MaxTextBytes int
	MaxLinks     int
	// RobotsToken is the crawler's product token: a <meta name> equal to it is a robots meta
	// tag addressed to this crawler.
	RobotsToken string
}

// ExtractHTML extracts the title, the visible text and the links of an HTML
// page fetched from pageURL, in a single pass of an HTML tokenizer. It never
// fails: malformed or hostile markup yields whatever could be read.
//
// The title is the text of the first <title> element (outside <svg> and
// <template>), whitespace collapsed, at most MaxTitleBytes.
//
// The text is what a browser would show: the contents of <head> (except the
// title), <script>, <style>, <noscript>, <template>, <svg>, <iframe>,
// <object>, <noembed> and <noframes> are skipped; runs of white space become
// one space, block elements are separated by newlines and table cells by
// spaces; control characters are dropped and invalid UTF-8 becomes U+FFFD.
// It is cut on a rune boundary at lim.MaxTextBytes, setting TextTruncated.
//
// Links are the href attributes of <a> and <area> elements, anywhere in the
// document (inside <noscript> too), resolved against the first <base href>
// if it is a valid http(s) URL, else against pageURL, and canonicalised by
// canon.Resolve: javascript:, data:, mailto: and other non-http(s) links and
// links longer than crawlurl.MaxURLLength are dropped; rel=nofollow is not
// honoured (a page-level nofollow is: MetaRobots, read by robots.NoFollow).
// The first lim.MaxLinks distinct links are kept, setting
// LinksTruncated if there were more. pageURL may be nil, in which case only
// absolute links are kept.
func ExtractHTML(body []byte, pageURL *url.URL, canon crawlurl.Canonicalizer, lim ExtractLimits) Extracted {
	if lim.MaxTextBytes <= 0 {
		lim.MaxTextBytes = DefaultMaxTextBytes
	}
	if lim.MaxLinks <= 0 {
		lim.MaxLinks = DefaultMaxLinks
	}
	x := extractor{
		canon:    canon,
		base:     pageURL,
		maxLinks: lim.MaxLinks,
		token:    strings.ToLower(lim.RobotsToken), // a product token is ASCII
		text:     textBuffer{max: lim.MaxTextBytes, hint: len(body)},
		title:    textBuffer{max: MaxTitleBytes},
		// Links found before a <base> must be resolved again against it;
		// keep them only if there may be one.
		keepEarly: containsFold(body, "<base"),
	}
	x.run(html.NewTokenizer(bytes.NewReader(body)))
	return Extracted{
		// Valid UTF-8 without control characters by construction (FuzzExtractHTML checks it).
		Title:          x.title.b.String(),
		Text:           x.text.b.String(),
		Links:          x.links,
		TextTruncated:  x.text.truncated,
		LinksTruncated: x.linksTruncated,
		MetaRobots:     x.metaRobots,
	}
}

type extractor struct {
	canon    crawlurl.Canonicalizer
	base     *url.URL
	maxLinks int
	token    string // RobotsToken, lower-cased

	metaRobots []string

	text, title textBuffer

	skip      atom.Atom // the element whose contents are being skipped, or 0
	skipDepth int       // nesting depth of skip elements
	inHead    bool
	headDone  bool // the <head> is over, or the body started without one
	inTitle   bool // collecting the title
	titleSeen bool

	links          []string
	seen           map[string]struct{}
	linksTruncated bool
	baseSeen       bool     // the first <base href> has been seen
	keepEarly      bool     // the body may contain a <base>
	early          []string // hrefs found before the first <base href>
}

// skipped reports whether the contents of element a are not visible text.
// A second <title> is one of them.
func skipped(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Svg,
		atom.Iframe, atom.Object, atom.Noembed, atom.Noframes, atom.Title:
		return true
	}
	return false
}

// rawText reports whether the tokenizer returns the contents of element a
// as one text token, even when the tag is written as self-closing.
func rawText(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Noscript, atom.Iframe, atom.Noembed,
		atom.Noframes, atom.Title, atom.Textarea, atom.Xmp, atom.Plaintext:
		return true
	}
	return false
}

// allowedInHead reports whether element a may be in <head>; any other
// start tag ends it.
func allowedInHead(a atom.Atom) bool {
	switch a {
	case atom.Title, atom.Base, atom.Link, atom.Meta, atom.Style, atom.Script,
		atom.Noscript, atom.Template, atom.Basefont, atom.Bgsound, atom.Head,
		atom.Html:
		return true
	}
	return false
}

// breakAround returns what separates the text around element a: a newline
// for block elements, a space for table cells and form controls.
func breakAround(a atom.Atom) separator {
	switch a {
	case atom.Address, atom.Article, atom.Aside, atom.Blockquote, atom.Body,
		atom.Br, atom.Caption, atom.Center, atom.Dd, atom.Details, atom.Dialog,
		atom.Dir, atom.Div, atom.Dl, atom.Dt, atom.Fieldset, atom.Figcaption,
		atom.Figure, atom.Footer, atom.Form, atom.H1, atom.H2, atom.H3, atom.H4,
		atom.H5, atom.H6, atom.Header, atom.Hgroup, atom.Hr, atom.Html,
		atom.Legend, atom.Li, atom.Listing, atom.Main, atom.Menu, atom.Nav,
		atom.Ol, atom.Optgroup, atom.Option, atom.P, atom.Plaintext, atom.Pre,
		atom.Section, atom.Select, atom.Summary, atom.Table, atom.Tbody,
		atom.Textarea, atom.Tfoot, atom.Thead, atom.Tr, atom.Ul, atom.Xmp:
		return newline
	case atom.Td, atom.Th, atom.Img, atom.Input, atom.Button, atom.Label:
		return space
	}
	return none
}

func (x *extractor) run(z *html.Tokenizer) {
	for {
		switch tt := z.Next(); tt {
		case html.ErrorToken:
			return // io.EOF, or a malformed tag at the end
		case html.TextToken:
			if x.wantsText() {
				x.textToken(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			x.startTag(z, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			x.endTag(z)
		}
	}
}

// wantsText reports whether the current text token matters.
func (x *extractor) wantsText() bool {
	return x.inTitle || x.skip == 0 || x.skip == atom.Noscript
}

func (x *extractor) textToken(s []byte) {
	switch {
	case x.inTitle:
		x.title.write(s)
	case x.skip == atom.Noscript:
		// A crawler sees what a browser without scripts shows: the links.
		x.noscriptLinks(s)
	case x.skip != 0:
	case x.inHead:
		if isBlank(s) {
			return
		}
		x.leaveHead() // text in head starts the body, as in browsers
		x.text.write(s)
	default:
		x.text.write(s)
	}
}

func (x *extractor) startTag(z *html.Tokenizer, selfClosing bool) {
	a := tagAtom(z.Raw())
	if a == atom.A || a == atom.Area || a == atom.Base {
		x.linkTag(z, a)
	}
	if x.skip != 0 {
		if a == x.skip && !selfClosing {
			x.skipDepth++
		}
		return
	}
	if a == atom.Meta {
		x.metaTag(z)
	}
	if x.inHead && !allowedInHead(a) || a == atom.Body {
		x.leaveHead()
	}
	switch {
	case a == atom.Head && !selfClosing && !x.headDone && x.text.b.Len() == 0:
		x.inHead = true
	case a == atom.Title && !x.titleSeen:
		x.titleSeen, x.inTitle = true, true
	case skipped(a) && (!selfClosing || rawText(a)):
		x.skip, x.skipDepth = a, 1
	}
	if !x.inHead {
		x.text.separate(breakAround(a))
	}
}

func (x *extractor) endTag(z *html.Tokenizer) {
	a := tagAtom(z.Raw())
	if x.skip != 0 {
		if a == x.skip {
			if x.skipDepth--; x.skipDepth == 0 {
				x.skip = 0
			}
		}
		return
	}
	switch a {
	case atom.Title:
		x.inTitle = false
		return
	case atom.Head:
		x.leaveHead()
		return
	}
	if !x.inHead {
		x.text.separate(breakAround(a))
	}
}

func (x *extractor) leaveHead() {
	x.inHead, x.headDone = false, true
}

// tagAtom returns the atom of the tag whose raw text is raw ("<name ..." or
// "</name ..."), or 0 for an unknown name. It is Tokenizer.TagName without
// the allocation, which matters on the hot path.
func tagAtom(raw []byte) atom.Atom {
	i := 1 // past '<'
	if i < len(raw) && raw[i] == '/' {
		i++
	}
	var name [16]byte // longer than any element name that matters here
	n := 0
	for ; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case ' ', '\t', '\n', '\r', '\f', '/', '>':
			return atom.Lookup(name[:n])
		}
		if n == len(name) {
			return 0
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		name[n] = c
		n++
	}
	return atom.Lookup(name[:n])
}

// linkTag handles the href of an <a>, <area> or <base> tag.
func (x *extractor) linkTag(z *html.Tokenizer, a atom.Atom) {
	for more := true; more; {
		var key, val []byte
		key, val, more = z.TagAttr()
		if string(key) != "href" {
			continue
		}
		if a == atom.Base {
			x.setBase(val)
		} else {
			x.link(val)
		}
		return // the first href counts
	}
}

// metaTag keeps the content of a robots meta tag. Reading a tag's attributes
// allocates, and pages have many meta tags (charset, viewport, og:…), so only
// a tag that mentions "robots" or the token at all is read.
func (x *extractor) metaTag(z *html.Tokenizer) {
	raw := z.Raw()
	if len(x.metaRobots) >= 16 || !containsFold(raw, "robots") && (x.token == "" || !containsFold(raw, x.token)) {
		return
	}
	var name, content []byte // valid until the tokenizer moves on
	for more := true; more; {
		var key, val []byte
		key, val, more = z.TagAttr()
		switch string(key) {
		case "name":
			name = val
		case "content":
			content = val
		}
	}
	name = bytes.TrimSpace(name)
	if len(content) == 0 || !equalFoldASCII(name, "robots") && (x.token == "" || !equalFoldASCII(name, x.token)) {
		return
	}
	// Directives are short; a hostile page's attribute need not be kept whole.
	x.metaRobots = append(x.metaRobots, string(content[:min(len(content), 1024)]))
}

// setBase handles the first <base href>: if it is a valid http(s) URL it
// becomes the base, and the links found so far are resolved again.
func (x *extractor) setBase(href []byte) {
	if x.baseSeen || x.skip == atom.Template {
		return
	}
	x.baseSeen = true
	early := x.early
	x.early = nil
	b, ok := x.canon.Resolve(x.base, string(href))
	if !ok {
		return
	}
	u, err := url.Parse(b)
	if err != nil {
		return
	}
	x.base = u
	x.links = x.links[:0]
	clear(x.seen)
	x.linksTruncated = false
	for _, h := range early {
		x.addLink(h)
	}
}

func (x *extractor) link(href []byte) {
	if len(href) > crawlurl.MaxURLLength {
		return // cannot resolve to an acceptable URL, and is not worth copying
	}
	h := string(href)
	if x.keepEarly && !x.baseSeen {
		x.early = append(x.early, h)
	}
	x.addLink(h)
}

func (x *extractor) addLink(href string) {
	if x.linksTruncated {
		return
	}
	u, ok := x.canon.Resolve(x.base, href)
	if !ok {
		return
	}
	if _, dup := x.seen[u]; dup {
		return
	}
	if len(x.links) >= x.maxLinks {
		x.linksTruncated = true
		return
	}
	if x.seen == nil {
		x.seen = make(map[string]struct{})
	}
	x.seen[u] = struct{}{}
	x.links = append(x.links, u)
}

// noscriptLinks collects the links in the raw contents of a <noscript>.
func (x *extractor) noscriptLinks(s []byte) {
	z := html.NewTokenizer(bytes.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return
		case html.StartTagToken, html.SelfClosingTagToken:
			if a := tagAtom(z.Raw()); a == atom.A || a == atom.Area {
				x.linkTag(z, a)
			}
		}
	}
}

// separator is what goes between two words.
type separator uint8

const (
	none separator = iota
	space
	newline
)

// textBuffer accumulates text with white space collapsed: a run of white
// space and element breaks becomes one separator, a newline if any of it
// was a newline break, and there is none at either end.
type textBuffer struct {
	b         strings.Builder
	max       int
	hint      int // the size of the document: the text cannot be longer
	pending   separator
	truncated bool
}

func (t *textBuffer) separate(s separator) {
	t.pending = max(t.pending, s)
}

// write appends s, collapsing white space, dropping control characters and
// replacing each run of invalid UTF-8 with one U+FFFD.
func (t *textBuffer) write(s []byte) {
	invalid := false // the previous byte was invalid UTF-8
	for i := 0; i < len(s) && !t.truncated; {
		if n := plainRun(s[i:]); n > 0 {
			t.add(s[i : i+n])
			i += n
			invalid = false
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			invalid = false
			if asciiSpace(c) {
				t.separate(space)
			} // else a control character: dropped
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		wasInvalid := invalid
		invalid = r == utf8.RuneError && size == 1
		switch {
		case invalid:
			if !wasInvalid {
				replacement := [...]byte{0xef, 0xbf, 0xbd} // U+FFFD
				t.add(replacement[:])
			}
		case unicode.IsSpace(r):
			t.separate(space)
		} // else a C1 control character: dropped
		i += size
	}
}

// plainRun returns the length of the longest prefix of s made of valid
// UTF-8 runes that are neither white space nor control characters, except
// single ASCII spaces between two of them: those are what collapsing white
// space would write anyway, so a line of ordinary words is one run.
func plainRun(s []byte) int {
	i := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f {
				if c == ' ' && i > 0 && i+1 < len(s) && s[i+1] > ' ' && s[i+1] < 0x7f {
					i++ // a single space between words
					continue
				}
				break
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 || r < 0xa0 || unicode.IsSpace(r) {
			break
		}
		i += size
	}
	return i
}

func (s separator) String() string {
	switch s {
	case space:
		return " "
	case newline:
		return "\n"
	}
	return ""
}

// add appends the valid UTF-8 run w (words and single spaces, never at
// either end), preceded by the pending separator.
// What does not fit within the limit is cut on a rune boundary, and the
// buffer is marked truncated.
func (t *textBuffer) add(w []byte) {
	sep := t.pending.String()
	if t.b.Len() == 0 {
		sep = ""
	}
	if room := t.max - t.b.Len() - len(sep); len(w) > room {
		t.truncated = true
		if room <= 0 {
			return
		}
		for room > 0 && !utf8.RuneStart(w[room]) {
			room--
		}
		w = bytes.TrimRight(w[:room], " ") // a run may hold spaces: never end on one
		if len(w) == 0 {
			return
		}
	}
	if t.b.Cap() == 0 {
		t.b.Grow(min(t.max, max(t.hint, 64)))
	}
	t.b.WriteString(sep)
	t.b.Write(w)
	t.pending = none
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '\v'
}

func isBlank(s []byte) bool {
	return len(bytes.TrimFunc(s, unicode.IsSpace)) == 0
}

// containsFold reports whether s contains the lower-case ASCII substr (not
// empty), in any case.
func containsFold(s []byte, substr string) bool {
	first, upper := substr[0], substr[0]
	if 'a' <= first && first <= 'z' {
		upper -= 'a' - 'A'
	}
	for {
		i := bytes.IndexByte(s, first)
		if upper != first {
			if j := bytes.IndexByte(s, upper); j >= 0 && (i < 0 || j < i) {
				i = j
			}
		}
		if i < 0 {
			return false
		}
		s = s[i:]
		if len(s) < len(substr) {
			return false
		}
		if equalFoldASCII(s[:len(substr)], substr) {
			return true
		}
		s = s[1:]
	}
}

// equalFoldASCII reports whether b equals the lower-case ASCII lower,
// ignoring ASCII case.
func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

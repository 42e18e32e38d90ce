package crawlurl

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCanonicalize(t *testing.T) {
	t.Parallel()
	long := "http://example.com/" + strings.Repeat("a", MaxURLLength-len("http://example.com/"))
	tests := []struct {
		name string
		in   string
		want string
	}{
		// The example from the brief: every structural rule at once.
		{name: "combined", in: "HTTP://Example.COM:80/a/../b?#frag", want: "http://example.com/b"},

		// Scheme and host.
		{name: "already canonical", in: "https://example.com/a?b=c", want: "https://example.com/a?b=c"},
		{name: "scheme lowercased", in: "HtTpS://example.com/", want: "https://example.com/"},
		{name: "host lowercased", in: "http://WWW.Example.COM/Path", want: "http://www.example.com/Path"},
		{name: "trailing dot", in: "http://example.com./", want: "http://example.com/"},
		{name: "trailing dots", in: "http://example.com../", want: "http://example.com/"},
		{name: "userinfo dropped", in: "http://user:pass@example.com/", want: "http://example.com/"},
		{name: "userinfo with at signs", in: "http://a@b@example.com/", want: "http://example.com/"},
		{name: "underscore host", in: "http://my_host.example.com/", want: "http://my_host.example.com/"},
		{name: "double hyphen host", in: "http://r3---sn-abc.googlevideo.com/", want: "http://r3---sn-abc.googlevideo.com/"},
		{name: "escaped host", in: "http://ex%41mple.com/", want: "http://example.com/"},
		{name: "ipv4", in: "http://192.168.0.1:8080/", want: "http://192.168.0.1:8080/"},
		{name: "ipv6", in: "http://[2001:DB8:0:0::1]/", want: "http://[2001:db8::1]/"},
		{name: "ipv6 default port", in: "https://[::1]:443/x", want: "https://[::1]/x"},
		{name: "ipv6 other port", in: "http://[::1]:8080/", want: "http://[::1]:8080/"},
		{name: "localhost", in: "http://LOCALHOST:3000", want: "http://localhost:3000/"},

		// IDN.
		{name: "idn", in: "http://bücher.de/", want: "http://xn--bcher-kva.de/"},
		{name: "idn uppercase", in: "http://BÜCHER.de/", want: "http://xn--bcher-kva.de/"},
		{name: "idn subdomain", in: "https://www.Bücher.example/", want: "https://www.xn--bcher-kva.example/"},
		{name: "idn fullwidth dot", in: "http://bücher。de/", want: "http://xn--bcher-kva.de/"},
		{name: "idn non-transitional", in: "http://faß.de/", want: "http://xn--fa-hia.de/"},
		{name: "punycode kept", in: "http://xn--bcher-kva.de/", want: "http://xn--bcher-kva.de/"},
		{name: "escaped idn host", in: "http://b%C3%BCcher.de/", want: "http://xn--bcher-kva.de/"},

		// Ports.
		{name: "http default port", in: "http://example.com:80/", want: "http://example.com/"},
		{name: "https default port", in: "https://example.com:443/", want: "https://example.com/"},
		{name: "http on 443 kept", in: "http://example.com:443/", want: "http://example.com:443/"},
		{name: "https on 80 kept", in: "https://example.com:80/", want: "https://example.com:80/"},
		{name: "other port", in: "http://example.com:8080/", want: "http://example.com:8080/"},
		{name: "leading zeros", in: "http://example.com:0080/", want: "http://example.com/"},
		{name: "empty port", in: "http://example.com:/", want: "http://example.com/"},

		// Path.
		{name: "empty path", in: "http://example.com", want: "http://example.com/"},
		{name: "empty path with query", in: "http://example.com?a=1", want: "http://example.com/?a=1"},
		{name: "dot segments", in: "http://example.com/a/./b/../c", want: "http://example.com/a/c"},
		{name: "dot dot above root", in: "http://example.com/../../a", want: "http://example.com/a"},
		{name: "trailing dot dot", in: "http://example.com/a/b/..", want: "http://example.com/a/"},
		{name: "trailing dot", in: "http://example.com/a/.", want: "http://example.com/a/"},
		{name: "escaped dot segments", in: "http://example.com/a/%2e%2E/b", want: "http://example.com/b"},
		{name: "dots in names kept", in: "http://example.com/a..b/.c/..d", want: "http://example.com/a..b/.c/..d"},
		{name: "double slash kept", in: "http://example.com/a//b", want: "http://example.com/a//b"},
		{name: "trailing slash kept", in: "http://example.com/a/", want: "http://example.com/a/"},
		{name: "path case kept", in: "http://example.com/ABC", want: "http://example.com/ABC"},
		{name: "backslashes", in: `http:\\example.com\a\b`, want: "http://example.com/a/b"},

		// Percent-encoding.
		{name: "tilde decoded", in: "http://example.com/%7euser", want: "http://example.com/~user"},
		{name: "unreserved decoded", in: "http://example.com/%41%62%2D%5F%2e%30", want: "http://example.com/Ab-_.0"},
		{name: "slash stays encoded", in: "http://example.com/a%2fb", want: "http://example.com/a%2Fb"},
		{name: "hex uppercased", in: "http://example.com/%c3%bc", want: "http://example.com/%C3%BC"},
		{name: "space", in: "http://example.com/a b?c d", want: "http://example.com/a%20b?c%20d"},
		{name: "plus kept", in: "http://example.com/?q=a+b", want: "http://example.com/?q=a+b"},
		{name: "escaped plus kept", in: "http://example.com/?q=a%2bb", want: "http://example.com/?q=a%2Bb"},
		{name: "unicode path", in: "http://example.com/ünï/日本", want: "http://example.com/%C3%BCn%C3%AF/%E6%97%A5%E6%9C%AC"},
		{name: "unicode query", in: "http://example.com/?q=ü", want: "http://example.com/?q=%C3%BC"},
		{name: "invalid utf8", in: "http://example.com/\xff", want: "http://example.com/%FF"},
		{name: "stray percent", in: "http://example.com/100%", want: "http://example.com/100%25"},
		{name: "bad escape", in: "http://example.com/%zz?q=%g1", want: "http://example.com/%25zz?q=%25g1"},
		{name: "escaped percent kept", in: "http://example.com/%25", want: "http://example.com/%25"},
		{name: "unsafe characters", in: "http://example.com/<a>\"{|}^`", want: "http://example.com/%3Ca%3E%22%7B%7C%7D%5E%60"},
		{name: "control characters", in: "http://example.com/a\x00b\x7f", want: "http://example.com/a%00b%7F"},
		{name: "sub-delims kept", in: "http://example.com/!$&'()*+,;=:@?/?:@", want: "http://example.com/!$&'()*+,;=:@?/?:@"},
		{name: "tab and newline removed", in: "http://exa\tmple.com/a\nb\r", want: "http://example.com/ab"},
		{name: "surrounding space", in: " \x01 http://example.com/ \n", want: "http://example.com/"},

		// Query and fragment.
		{name: "fragment dropped", in: "http://example.com/a#b", want: "http://example.com/a"},
		{name: "fragment with query chars", in: "http://example.com/a#b?c", want: "http://example.com/a"},
		{name: "empty query dropped", in: "http://example.com/a?", want: "http://example.com/a"},
		{name: "empty query and fragment", in: "http://example.com/a?#", want: "http://example.com/a"},
		{name: "empty params dropped", in: "http://example.com/?&a=1&&b=2&", want: "http://example.com/?a=1&b=2"},
		{name: "only ampersands", in: "http://example.com/?&&", want: "http://example.com/"},
		{name: "query sorted by key", in: "http://example.com/?b=1&a=2", want: "http://example.com/?a=2&b=1"},
		{name: "query order merges", in: "http://example.com/q?b=2&a=1", want: "http://example.com/q?a=1&b=2"},
		{name: "question mark in query", in: "http://example.com/?a=?b", want: "http://example.com/?a=?b"},

		// Session ids (Default strips them).
		{name: "jsessionid param", in: "http://example.com/?jsessionid=abc&a=1", want: "http://example.com/?a=1"},
		{name: "session params any case", in: "http://example.com/?PHPSESSID=1&Sid=2&SessionID=3&session_id=4&CFID=5&cftoken=6&a=1", want: "http://example.com/?a=1"},
		{name: "shop session params", in: "http://example.com/p?osCsid=ab12&zenid=cd&SESSID=9&id=7", want: "http://example.com/p?id=7"},
		{name: "aspsessionid prefix", in: "http://example.com/?ASPSESSIONIDQADRSBQT=x&b=2", want: "http://example.com/?b=2"},
		{name: "session param without value", in: "http://example.com/?sid", want: "http://example.com/"},
		{name: "escaped session param name", in: "http://example.com/?%73id=1&a=1", want: "http://example.com/?a=1"},
		{name: "similar names kept", in: "http://example.com/?sids=1&xsid=2&sid_=3", want: "http://example.com/?sid_=3&sids=1&xsid=2"},
		{name: "session value kept", in: "http://example.com/?a=sid", want: "http://example.com/?a=sid"},
		{name: "jsessionid path param", in: "http://example.com/shop;jsessionid=0123ABC?x=1", want: "http://example.com/shop?x=1"},
		{name: "jsessionid path param mid path", in: "http://example.com/a;JSESSIONID=1/b", want: "http://example.com/a/b"},
		{name: "jsessionid path param before dot dot", in: "http://example.com/a/..;jsessionid=1/b", want: "http://example.com/b"},
		{name: "other path params kept", in: "http://example.com/a;v=1", want: "http://example.com/a;v=1"},

		// Length.
		{name: "max length", in: long, want: long},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Canonicalize(tt.in)
			if err != nil {
				t.Fatalf("Canonicalize(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Canonicalize(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			again, err := Canonicalize(got)
			if err != nil || again != got {
				t.Errorf("not idempotent: Canonicalize(%q) = %q, %v", got, again, err)
			}
		})
	}
}

func TestCanonicalizeOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		canon Canonicalizer
		in    string
		want  string
	}{
		{name: "zero keeps session ids", canon: Canonicalizer{}, in: "http://example.com/a;jsessionid=1?sid=2&b=1", want: "http://example.com/a;jsessionid=1?sid=2&b=1"},
		{name: "zero keeps order", canon: Canonicalizer{}, in: "http://example.com/?b=1&a=2", want: "http://example.com/?b=1&a=2"},
		{name: "sort by key", canon: Canonicalizer{SortQuery: true}, in: "http://example.com/?c=1&a=2&b=3", want: "http://example.com/?a=2&b=3&c=1"},
		{name: "repeated keys keep their order", canon: Canonicalizer{SortQuery: true}, in: "http://example.com/?b=0&a=2&a=1&a=10", want: "http://example.com/?a=2&a=1&a=10&b=0"},
		{name: "sort key before value", canon: Canonicalizer{SortQuery: true}, in: "http://example.com/?a-b=1&a=2", want: "http://example.com/?a=2&a-b=1"},
		{name: "sort keys without values", canon: Canonicalizer{SortQuery: true}, in: "http://example.com/?z&a=&a", want: "http://example.com/?a=&a&z"},
		{name: "sort and strip", canon: Canonicalizer{SortQuery: true, StripSessionIDs: true}, in: "http://example.com/?b=1&SID=x&a=1", want: "http://example.com/?a=1&b=1"},
		{name: "sort after decoding", canon: Canonicalizer{SortQuery: true}, in: "http://example.com/?%62=1&a=1", want: "http://example.com/?a=1&b=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.canon.Canonicalize(tt.in)
			if err != nil {
				t.Fatalf("Canonicalize(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%+v.Canonicalize(%q) mismatch (-want +got):\n%s", tt.canon, tt.in, diff)
			}
			if again, err := tt.canon.Canonicalize(got); err != nil || again != got {
				t.Errorf("not idempotent: Canonicalize(%q) = %q, %v", got, again, err)
			}
		})
	}
}

func TestCanonicalizeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr error
		wantMsg string // exact message, when set
	}{
		{name: "ftp", in: "ftp://example.com/", wantErr: ErrUnsupportedScheme, wantMsg: `frontier: unsupported scheme "ftp"`},
		{name: "javascript", in: "javascript:alert(1)", wantErr: ErrUnsupportedScheme},
		{name: "mailto", in: "mailto:a@example.com", wantErr: ErrUnsupportedScheme},
		{name: "data", in: "data:text/html,hi", wantErr: ErrUnsupportedScheme},
		{name: "empty", in: "", wantErr: ErrInvalidURL},
		{name: "relative", in: "/a/b", wantErr: ErrInvalidURL},
		{name: "scheme relative", in: "//example.com/", wantErr: ErrInvalidURL},
		{name: "no slashes", in: "http:example.com", wantErr: ErrInvalidURL},
		{name: "empty host", in: "http:///a", wantErr: ErrInvalidURL},
		{name: "only userinfo", in: "http://user@/a", wantErr: ErrInvalidURL},
		{name: "only port", in: "http://:80/", wantErr: ErrInvalidURL},
		{name: "only dots", in: "http://../", wantErr: ErrInvalidURL},
		{name: "empty label", in: "http://a..b/", wantErr: ErrInvalidURL},
		{name: "leading dot", in: "http://.a.com/", wantErr: ErrInvalidURL},
		{name: "label too long", in: "http://" + strings.Repeat("a", 64) + ".com/", wantErr: ErrInvalidURL},
		{name: "host too long", in: "http://" + strings.Repeat("a.", 127) + "com/", wantErr: ErrInvalidURL},
		{name: "space in host", in: "http://exa mple.com/", wantErr: ErrInvalidURL},
		{name: "bad host characters", in: "http://exa$mple.com/", wantErr: ErrInvalidURL},
		{name: "bad escape in host", in: "http://exa%zzmple.com/", wantErr: ErrInvalidURL},
		{name: "escaped slash in host", in: "http://a%2Fb.com/", wantErr: ErrInvalidURL},
		{name: "invalid utf-8 escaped in host", in: "https://example.com%80/", wantErr: ErrInvalidURL},
		{name: "lone continuation byte escaped in host", in: "https://example.com%A0/", wantErr: ErrInvalidURL},
		{name: "latin-1 escape in host", in: "http://ex%E4mple.com/", wantErr: ErrInvalidURL},
		{name: "invalid utf-8 escapes in host", in: "http://%ff%fe.example/", wantErr: ErrInvalidURL},
		{name: "invalid utf-8 byte in host", in: "http://exa\x80mple.com/", wantErr: ErrInvalidURL},
		{name: "bad idn", in: "http://a\u200db.com/", wantErr: ErrInvalidURL},
		{name: "port not numeric", in: "http://example.com:http/", wantErr: ErrInvalidURL},
		{name: "port too big", in: "http://example.com:65536/", wantErr: ErrInvalidURL},
		{name: "port huge", in: "http://example.com:99999999999999999999999/", wantErr: ErrInvalidURL},
		{name: "ipv6 unclosed", in: "http://[::1/", wantErr: ErrInvalidURL},
		{name: "ipv6 invalid", in: "http://[::g]/", wantErr: ErrInvalidURL},
		{name: "ipv6 zone", in: "http://[fe80::1%25eth0]/", wantErr: ErrInvalidURL},
		{name: "ipv4 in brackets", in: "http://[1.2.3.4]/", wantErr: ErrInvalidURL},
		{name: "junk after ipv6", in: "http://[::1]x/", wantErr: ErrInvalidURL},
		{name: "too long", in: "http://example.com/" + strings.Repeat("a", MaxURLLength), wantErr: ErrTooLong},
		{name: "too long after escaping", in: "http://example.com/" + strings.Repeat("é", 700), wantErr: ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Canonicalize(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Canonicalize(%q) = %q, %v; want error %v", tt.in, got, err, tt.wantErr)
			}
			if got != "" {
				t.Errorf("Canonicalize(%q) = %q with error, want empty", tt.in, got)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("Canonicalize(%q) error %q, want %q", tt.in, err, tt.wantMsg)
			}
		})
	}
}

// TestCanonicalizeHost covers the URL Standard's host parser as it decides
// what a host is: percent-decoding, and IPv4 addresses written as a number
// that ends the host. Most cases come from the web-platform-tests
// (url/resources/urltestdata.json); "FAIL" means the standard rejects the
// URL, so a browser would not follow such a link either.
func TestCanonicalizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want is the canonical host, or "FAIL"
	}{
		// One address, many spellings: all must be one host for dedup and
		// politeness.
		{"http://255.255.255.255/", "255.255.255.255"},
		{"http://0xffffffff/", "255.255.255.255"},
		{"http://0XFFFFFFFF/", "255.255.255.255"},
		{"http://4294967295/", "255.255.255.255"},
		{"http://037777777777/", "255.255.255.255"},
		{"http://0xff.0xffffff/", "255.255.255.255"},
		{"http://192.168.0.1/", "192.168.0.1"},
		{"http://0xc0.0250.01/", "192.168.0.1"},
		{"http://192.0x00a80001/", "192.168.0.1"},
		{"http://192.0x00A80001/", "192.168.0.1"},
		{"http://192.168.1/", "192.168.0.1"},
		{"http://192.11010049/", "192.168.0.1"},
		{"http://3232235521/", "192.168.0.1"},
		{"http://%30%78%63%30%2e%30%32%35%30.01/", "192.168.0.1"},
		{"http://%30%78%63%30%2e%30%32%35%30.01%2e/", "192.168.0.1"},
		{"http://０Ｘｃ０．０２５０．０１/", "192.168.0.1"},
		{"http://192.168.257/", "192.168.1.1"},
		{"http://192.168.257./", "192.168.1.1"},
		{"http://256/", "0.0.1.0"},
		{"http://999999999/", "59.154.201.255"},
		{"http://0x7f000001/", "127.0.0.1"},
		{"http://2130706433/", "127.0.0.1"},
		{"http://0177.1/", "127.0.0.1"},
		{"http://127.1/", "127.0.0.1"},
		{"http://127.0.0.1./", "127.0.0.1"},
		{"http://0x.0x.0/", "0.0.0.0"},
		{"http://0/", "0.0.0.0"},
		{"http://00000000000000000000000000001/", "0.0.0.1"},
		{"http://0x7f000001:8080/", "127.0.0.1:8080"},
		{"https://0x7f000001:443/", "127.0.0.1"},

		// Ends in a number, but not a valid address.
		{"http://1.2.3.4.5/", "FAIL"},
		{"http://1.2.3.4.5./", "FAIL"},
		{"http://01.2.3.4.5/", "FAIL"},
		{"http://0x1.2.3.4.5/", "FAIL"},
		{"http://256.256.256.256/", "FAIL"},
		{"http://256.256.256.256.256/", "FAIL"},
		{"http://256.0.0.1/", "FAIL"},
		{"http://192.168.0.257/", "FAIL"},
		{"http://0x100.2.3.4/", "FAIL"},
		{"http://4294967296/", "FAIL"},
		{"http://10000000000/", "FAIL"},
		{"http://0xffffffff1/", "FAIL"},
		{"http://0x100000000/", "FAIL"},
		{"http://0999999999999999999/", "FAIL"},
		{"http://99999999999999999999999999999/", "FAIL"},
		{"http://1.2.3.08/", "FAIL"},
		{"http://1.2.3.09/", "FAIL"},
		{"http://09.2.3.4/", "FAIL"},
		{"http://0..0x300/", "FAIL"},
		{"http://foo.1.2.3.4/", "FAIL"},
		{"http://foo.2.3.4/", "FAIL"},
		{"http://foo.09/", "FAIL"},
		{"http://foo.0x4/", "FAIL"},
		{"http://foo.0x/", "FAIL"},
		{"http://foo.0XFfFfFfFfFfFfFfFfFfAcE123/", "FAIL"},
		{"http://foo.09../", "FAIL"}, // the standard keeps "foo.09.."; trailing dots are dropped first here
		{"http://💩.123/", "FAIL"},

		// Does not end in a number: a domain.
		{"http://1.2.3.+4/", "FAIL"}, // '+' is no host character, and no digit
		// ... but a minus sign before a number is refused: colly's parser reads it as a
		// negative IPv4 part and would connect elsewhere.
		{"http://1.2.3.-1/", "FAIL"},
		{"http://foo.-1/", "FAIL"},
		{"http://1.2.3.0x-1/", "FAIL"},
		{"http://1.2.3.0-7/", "FAIL"},
		{"http://1.2.-3.4/", "FAIL"}, // ends in a number: not an IPv4 part
		{"http://a.b-1/", "a.b-1"},
		{"http://a.-x/", "a.-x"},
		{"http://a.-ab/", "a.-ab"},
		{"http://a.0-9/", "a.0-9"},
		{"http://-1.example/", "-1.example"},
		{"http://a.b.c.0x1g/", "a.b.c.0x1g"},
		{"http://1.2.3.4x/", "1.2.3.4x"},
		{"http://123.example/", "123.example"},
		{"http://0x1_0/", "0x1_0"},

		// Percent-encoded hosts (invalid UTF-8: TestCanonicalizeErrors).
		{"http://ex%41mple.com/", "example.com"},
		{"http://b%C3%BCcher.de/", "xn--bcher-kva.de"},
		{"http://%25/", "FAIL"},
		{"http://hello%00/", "FAIL"},
		{"http://ho%20st/", "FAIL"},
		{"http://ho%2Fst/", "FAIL"},
		{"http://ho%40st/", "FAIL"},
		{"http://%zz%66%a.com/", "FAIL"},
		{"http://％４１.com/", "FAIL"},
		{"http://%ef%bc%85%ef%bc%94%ef%bc%91.com/", "FAIL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := Canonicalize(tt.in)
			if tt.want == "FAIL" {
				if !errors.Is(err, ErrInvalidURL) {
					t.Fatalf("Canonicalize(%q) = %q, %v; want ErrInvalidURL", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Canonicalize(%q): %v", tt.in, err)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, u.Host); diff != "" {
				t.Errorf("Canonicalize(%q) = %q: host (-want +got):\n%s", tt.in, got, diff)
			}
			if again, err := Canonicalize(got); err != nil || again != got {
				t.Errorf("not idempotent: Canonicalize(%q) = %q, %v", got, again, err)
			}
		})
	}
}

func TestParseIPv4Host(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host   string
		want   string // the address, "" when none
		isIPv4 bool
		errMsg string // the error's text, "" when none
	}{
		{"0xc0.0250.01", "192.168.0.1", true, ""},
		{"0XC0.0250.01.", "192.168.0.1", true, ""},
		{"4294967295", "255.255.255.255", true, ""},
		{"1.2.3.4.5", "", true, `frontier: invalid URL: bad IPv4 address "1.2.3.4.5": more than four parts`},
		{"1.2.3.256", "", true, `frontier: invalid URL: bad IPv4 address "1.2.3.256": last part "256" is greater than 255`},
		{"1.256.3", "", true, `frontier: invalid URL: bad IPv4 address "1.256.3": part "256" is greater than 255`},
		{"4294967296", "", true, `frontier: invalid URL: bad IPv4 address "4294967296": last part "4294967296" is greater than 4294967295`},
		{"foo.1", "", true, `frontier: invalid URL: bad IPv4 address "foo.1": part "foo" is not a number`},
		{"1.2.3.-1", "", false, ""},
		{"1.2.3.+4", "", false, ""},
		{"example.com", "", false, ""},
		{"x.0x1g", "", false, ""},
		{".", "", false, ""},
		{"", "", false, ""},
		{"::1", "", false, ""},
		{"::ffff:1.2.3.4", "", false, ""},
	}
	for _, tt := range tests {
		addr, isIPv4, err := ParseIPv4Host(tt.host)
		got := ""
		if addr.IsValid() {
			got = addr.String()
		}
		msg := ""
		if err != nil {
			msg = err.Error()
			if !errors.Is(err, ErrInvalidIPv4) || !errors.Is(err, ErrInvalidURL) {
				t.Errorf("ParseIPv4Host(%q) error %v is not ErrInvalidIPv4 and ErrInvalidURL", tt.host, err)
			}
		}
		if got != tt.want || isIPv4 != tt.isIPv4 || msg != tt.errMsg {
			t.Errorf("ParseIPv4Host(%q) = %q, %t, %q; want %q, %t, %q", tt.host, got, isIPv4, msg, tt.want, tt.isIPv4, tt.errMsg)
		}
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	base := mustParse(t, "http://example.com/a/b/c?q=1#top")
	tests := []struct {
		name   string
		base   *url.URL
		href   string
		want   string
		wantOK bool
	}{
		{name: "relative file", href: "d", want: "http://example.com/a/b/d", wantOK: true},
		{name: "dot slash", href: "./d", want: "http://example.com/a/b/d", wantOK: true},
		{name: "dot dot", href: "../d", want: "http://example.com/a/d", wantOK: true},
		{name: "dot dot twice", href: "../../d/../e", want: "http://example.com/e", wantOK: true},
		{name: "dot dot above root", href: "../../../../d", want: "http://example.com/d", wantOK: true},
		{name: "dot dot only", href: "..", want: "http://example.com/a/", wantOK: true},
		{name: "dot only", href: ".", want: "http://example.com/a/b/", wantOK: true},
		{name: "absolute path", href: "/x/y", want: "http://example.com/x/y", wantOK: true},
		{name: "query only", href: "?p=2", want: "http://example.com/a/b/c?p=2", wantOK: true},
		{name: "empty query", href: "?", want: "http://example.com/a/b/c", wantOK: true},
		{name: "fragment only", href: "#frag", want: "http://example.com/a/b/c?q=1", wantOK: true},
		{name: "scheme relative", href: "//other.com/x", want: "http://other.com/x", wantOK: true},
		{name: "scheme relative uppercase", href: "//OTHER.com", want: "http://other.com/", wantOK: true},
		{name: "absolute", href: "https://Other.COM:443/x#y", want: "https://other.com/x", wantOK: true},
		{name: "absolute uppercase scheme", href: "HTTP://other.com/", want: "http://other.com/", wantOK: true},
		{name: "whitespace trimmed", href: "  \n\t/x \n", want: "http://example.com/x", wantOK: true},
		{name: "newline inside", href: "/a\nb", want: "http://example.com/ab", wantOK: true},
		{name: "space inside", href: "my page.html", want: "http://example.com/a/b/my%20page.html", wantOK: true},
		{name: "unicode", href: "ü", want: "http://example.com/a/b/%C3%BC", wantOK: true},
		{name: "backslashes", href: `\\other.com\x`, want: "http://other.com/x", wantOK: true},
		{name: "colon in later segment", href: "a/b:c", want: "http://example.com/a/b/a/b:c", wantOK: true},
		{name: "session id dropped", href: "/x?jsessionid=1", want: "http://example.com/x", wantOK: true},
		{name: "empty", href: "", wantOK: false},
		{name: "blank", href: " \t\n", wantOK: false},
		{name: "javascript", href: "javascript:void(0)", wantOK: false},
		{name: "javascript uppercase", href: "JavaScript:alert(1)", wantOK: false},
		{name: "javascript with space", href: " javascript:alert(1)", wantOK: false},
		{name: "javascript split by newline", href: "java\nscript:alert(1)", wantOK: false},
		{name: "data", href: "data:text/html;base64,PHNjcmlwdD4=", wantOK: false},
		{name: "mailto", href: "mailto:someone@example.com", wantOK: false},
		{name: "tel", href: "tel:+15555550100", wantOK: false},
		{name: "ftp", href: "ftp://example.com/file", wantOK: false},
		{name: "http without slashes", href: "http:foo", wantOK: false},
		{name: "bad host", href: "//exa mple.com/", wantOK: false},
		{name: "hex ipv4 host", href: "//0xC0A80001/x", want: "http://192.168.0.1/x", wantOK: true},
		{name: "invalid ipv4 host", href: "//1.2.3.4.5/x", wantOK: false},
		{name: "bad percent-encoded host", href: "https://example.com%80/", wantOK: false},
		{name: "octal ipv4 base", base: mustParse(t, "http://0177.0.0.1:8080/a/"), href: "b", want: "http://127.0.0.1:8080/a/b", wantOK: true},
		{name: "too long", href: "/" + strings.Repeat("x", MaxURLLength), wantOK: false},
		{name: "too long after resolving", href: strings.Repeat("x", MaxURLLength-10), wantOK: false},
		{name: "nil base relative", base: nil, href: "/x", wantOK: false},
		{name: "base without path", base: mustParse(t, "http://example.com"), href: "x", want: "http://example.com/x", wantOK: true},
		{name: "base without path query", base: mustParse(t, "https://example.com"), href: "?a=1", want: "https://example.com/?a=1", wantOK: true},
		{name: "base directory", base: mustParse(t, "http://example.com/dir/"), href: "x", want: "http://example.com/dir/x", wantOK: true},
		{name: "base escaped", base: mustParse(t, "http://example.com/%7Ea/b%20c"), href: "d", want: "http://example.com/~a/d", wantOK: true},
		{name: "base with userinfo and port", base: mustParse(t, "http://u:p@Example.com:8080/a"), href: "b", want: "http://example.com:8080/b", wantOK: true},
		{name: "idn base", base: mustParse(t, "http://bücher.de/a/"), href: "b", want: "http://xn--bcher-kva.de/a/b", wantOK: true},
		{name: "ipv6 base", base: mustParse(t, "http://[::1]:8080/a/"), href: "../b", want: "http://[::1]:8080/b", wantOK: true},
		{name: "ftp base", base: mustParse(t, "ftp://example.com/a/"), href: "b", wantOK: false},
		{name: "ftp base absolute href", base: mustParse(t, "ftp://example.com/a/"), href: "http://example.com/", want: "http://example.com/", wantOK: true},
		{name: "opaque base", base: mustParse(t, "mailto:a@example.com"), href: "b", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := tt.base
			if b == nil && !strings.HasPrefix(tt.name, "nil base") {
				b = base
			}
			got, ok := Default.Resolve(b, tt.href)
			if ok != tt.wantOK {
				t.Fatalf("Resolve(%v, %q) = %q, %v; want ok %v", b, tt.href, got, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Resolve(%v, %q) mismatch (-want +got):\n%s", b, tt.href, diff)
			}
		})
	}
}

func TestResolveDoesNotModifyBase(t *testing.T) {
	t.Parallel()
	base := mustParse(t, "http://example.com/a/b")
	before := *base
	if _, ok := Default.Resolve(base, "../c?x#y"); !ok {
		t.Fatal("Resolve failed")
	}
	if diff := cmp.Diff(before, *base); diff != "" {
		t.Errorf("base changed (-want +got):\n%s", diff)
	}
}

func TestHostKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{in: "http://example.com/", want: "example.com"},
		{in: "http://Example.COM:80/", want: "example.com"},
		{in: "https://example.com:443/", want: "example.com"},
		{in: "http://example.com:443/", want: "example.com:443"},
		{in: "https://example.com:80/", want: "example.com:80"},
		{in: "HTTPS://example.com:443/", want: "example.com"},
		{in: "http://example.com:8080/", want: "example.com:8080"},
		{in: "http://example.com./", want: "example.com"},
		{in: "http://user@example.com/", want: "example.com"},
		{in: "http://[::1]/", want: "[::1]"},
		{in: "http://[::1]:8080/", want: "[::1]:8080"},
		{in: "http://127.0.0.1:80/", want: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, HostKey(mustParse(t, tt.in))); diff != "" {
				t.Errorf("HostKey(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	if got := HostKey(nil); got != "" {
		t.Errorf("HostKey(nil) = %q, want empty", got)
	}
}

func TestHostKeyOfCanonicalIsHost(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"http://Example.com:80/", "https://x.example:8443/a", "http://[::FFFF:1.2.3.4]:443/", "http://bücher.de/"} {
		c, err := Canonicalize(raw)
		if err != nil {
			t.Fatalf("Canonicalize(%q): %v", raw, err)
		}
		u := mustParse(t, c)
		if got := HostKey(u); got != u.Host {
			t.Errorf("HostKey(%q) = %q, want u.Host %q", c, got, u.Host)
		}
	}
}

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", s, err)
	}
	return u
}

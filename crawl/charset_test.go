package crawl

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/unicode"
)

func encode(t *testing.T, e encoding.Encoding, s string) []byte {
	t.Helper()
	b, err := e.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatalf("encode %q: %v", s, err)
	}
	return b
}

func TestToUTF8(t *testing.T) {
	t.Parallel()
	const fr = "<p>Café naïve, crème brûlée à la française, garçon</p>"
	const ru = "<p>Привет, мир! Это страница на русском языке.</p>"
	const ja = "<p>日本語のページです。こんにちは世界。</p>"
	utf16 := append([]byte{0xff, 0xfe}, encode(t, unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), fr)...)
	tests := []struct {
		name        string
		body        []byte
		contentType string
		want        string
		wantEnc     string
	}{
		{"utf-8 labelled", []byte(fr), "text/html; charset=utf-8", fr, "utf-8"},
		{"utf-8 unlabelled", []byte(fr), "text/html", fr, "utf-8"},
		{"ascii", []byte("<p>plain</p>"), "text/html", "<p>plain</p>", "windows-1252"},
		{"latin-1 labelled", encode(t, charmap.ISO8859_1, fr), "text/html; charset=ISO-8859-1", fr, "windows-1252"},
		{"windows-1251 labelled", encode(t, charmap.Windows1251, ru), "text/html; charset=windows-1251", ru, "windows-1251"},
		{"label in meta", append([]byte(`<meta charset="shift_jis">`), encode(t, japanese.ShiftJIS, ja)...), "text/html", `<meta charset="shift_jis">` + ja, "shift_jis"},
		{"http-equiv meta", append([]byte(`<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">`), encode(t, charmap.KOI8R, ru)...), "", `<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">` + ru, "koi8-r"},
		{"header beats meta", append([]byte(`<meta charset="shift_jis">`), encode(t, charmap.Windows1251, ru)...), "text/html; charset=windows-1251", `<meta charset="shift_jis">` + ru, "windows-1251"},
		{"utf-16 with BOM", utf16, "text/html", fr, "utf-16le"},
		{"iso-2022-jp is 7-bit", encode(t, japanese.ISO2022JP, ja), "text/html; charset=iso-2022-jp", ja, "iso-2022-jp"},
		// Wrong labels.
		{"utf-8 labelled latin-1", []byte(fr), "text/html; charset=iso-8859-1", fr, "utf-8"},
		{"utf-8 in a windows-1251 meta", append([]byte(`<meta charset="windows-1251">`), ru...), "text/html", `<meta charset="windows-1251">` + ru, "utf-8"},
		{"latin-1 labelled utf-8", encode(t, charmap.ISO8859_1, fr), "text/html; charset=utf-8", fr, "windows-1252"},
		{"windows-1251 labelled utf-8", encode(t, charmap.Windows1251, ru+ru+ru), "text/html; charset=UTF-8", ru + ru + ru, "windows-1251"},
		{"latin-1 labelled utf-8, meta says", append([]byte(`<meta charset="iso-8859-15">`), encode(t, charmap.ISO8859_15, fr)...), "text/html; charset=utf-8", `<meta charset="iso-8859-15">` + fr, "iso-8859-15"},
		{"unknown label, utf-8 body", []byte(fr), "text/html; charset=x-no-such", fr, "utf-8"},
		{"damaged utf-8 stays utf-8", []byte("<p>café \xff naïve</p>"), "text/html; charset=utf-8", "<p>café \xff naïve</p>", "utf-8"},
		{"empty", nil, "text/html; charset=iso-8859-1", "", "utf-8"},
	}
	for _, tc := range tests {
		got, enc := toUTF8(tc.body, tc.contentType)
		if string(got) != tc.want || enc != tc.wantEnc {
			t.Errorf("%s: toUTF8 = %q, %q; want %q, %q", tc.name, got, enc, tc.want, tc.wantEnc)
		}
	}
}

func FuzzToUTF8(f *testing.F) {
	for _, s := range [][2]string{
		{"<p>Café</p>", "text/html; charset=iso-8859-1"},
		{"<p>caf\xe9</p>", "text/html; charset=utf-8"},
		{"\xff\xfe<\x00p\x00>\x00", "text/html"},
		{`<meta charset="shift_jis"><p>` + "\x93\xfa\x96\x7b", ""},
		{"\x1b$B$3$s\x1b(B", "text/html; charset=iso-2022-jp"},
		{"<p>\xc3\x28 é</p>", "text/html; charset=x-unknown"},
	} {
		f.Add([]byte(s[0]), s[1])
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		out, name := toUTF8(body, contentType)
		if name == "" {
			t.Fatal("no encoding name")
		}
		if name != "utf-8" && !utf8.Valid(out) {
			t.Fatalf("decoded as %s, the output is not valid UTF-8: %q", name, out)
		}
		if utf8.Valid(body) && hasValidMultibyte(body) && !bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
			// Valid UTF-8 with non-ASCII text is kept as it is, unless a BOM or the label names
			// an encoding that is not ASCII-compatible.
			if _, label, _ := charset.DetermineEncoding(body, contentType); asciiCompatible(label) && !bytes.Equal(out, body) {
				t.Fatalf("valid UTF-8 labelled %s was changed: %q -> %q", label, body, out)
			}
		}
	})
}

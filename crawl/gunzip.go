package crawl

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// Gunzip decompresses a gzip file body, such as a .xml.gz sitemap (the Fetcher keeps those
// compressed), keeping at most maxBytes of output: a gzip bomb costs no more memory than
// that. It reports whether the output was cut. Concatenated gzip members are read as one
// stream. A corrupt or truncated stream is an error, unless maxBytes were produced first.
func Gunzip(body []byte, maxBytes int) ([]byte, bool, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, false, fmt.Errorf("crawl: gunzip: %w", err)
	}
	defer zr.Close()
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(zr, int64(maxBytes)+1))
	if n > int64(maxBytes) {
		return out.Bytes()[:maxBytes], true, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("crawl: gunzip: %w", err)
	}
	return out.Bytes(), false, nil
}

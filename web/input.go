package web

import (
	"errors"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// paramError checks query and form parameters: a name or value holding a NUL character or
// invalid UTF-8 (which PostgreSQL text cannot store) is a 400 naming the parameter, so no
// handler has to remember it.
func paramError(vs url.Values) error {
	keys := make([]string, 0, len(vs))
	for k := range vs {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same parameter is named whatever the map order
	for _, k := range keys {
		if !cleanText(k) {
			return &fieldError{"query", "a parameter name contains NUL characters or invalid UTF-8"}
		}
		for _, v := range vs[k] {
			if !cleanText(v) {
				return &fieldError{k, "must not contain NUL characters or invalid UTF-8"}
			}
		}
	}
	return nil
}

func cleanText(s string) bool { return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) }

// checkParams rejects requests whose query string or form body holds a parameter that
// paramError refuses.
func checkParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		// What the handlers see: malformed pairs are left out, as echo's QueryParam does.
		if err := paramError(r.URL.Query()); err != nil {
			return err
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && isForm(r) {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes)
			if err := r.ParseMultipartForm(maxBodyBytes); err != nil && err != http.ErrNotMultipart {
				return formError(err)
			}
			if err := paramError(r.PostForm); err != nil {
				return err
			}
		}
		return next(c)
	}
}

func isForm(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data"
}

func formError(err error) error {
	var me *http.MaxBytesError
	if errors.As(err, &me) || errors.Is(err, multipart.ErrMessageTooLarge) {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "the form is too large")
	}
	return &fieldError{"body", "is not a valid form: " + err.Error()}
}

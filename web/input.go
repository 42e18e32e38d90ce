package web

import (
	"errors"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/store"
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

func pathID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, &fieldError{"id", "must be a positive integer"}
	}
	return id, nil
}

func queryID(c echo.Context, name string) (int64, error) {
	v := strings.TrimSpace(c.QueryParam(name))
	if v == "" {
		v = strings.TrimSpace(c.FormValue(name))
	}
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		return 0, &fieldError{name, "must be a positive integer"}
	}
	return id, nil
}

func invalidQuery(err error, field string) error {
	if errors.Is(err, store.ErrInvalidQuery) {
		return &fieldError{field, strings.TrimPrefix(err.Error(), "store: ")}
	}
	return err
}

func durationParam(c echo.Context, name string, def, lo, hi time.Duration) (time.Duration, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		return 0, &fieldError{name, "must be a duration between " + lo.String() + " and " + hi.String()}
	}
	return d, nil
}

func limitParam(c echo.Context, def int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, &fieldError{"limit", "must be between 1 and 500"}
	}
	return n, nil
}

package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

// Store is what the dashboard needs from the database (*store.Store).
type Store interface {
	CreateTarget(ctx context.Context, spec target.Spec) (store.Target, error)
	Target(ctx context.Context, id int64) (store.Target, error)
	Targets(ctx context.Context, limit int) ([]store.Target, error)

	Overview(ctx context.Context) (store.Overview, error)
	Throughput(ctx context.Context, targetID int64, window, bucket time.Duration) ([]store.RatePoint, error)
	TargetList(ctx context.Context, q store.TargetQuery) (store.TargetList, error)
	TargetSummary(ctx context.Context, id int64) (store.TargetSummary, error)
	TargetHosts(ctx context.Context, targetID int64, after string, limit int) (store.HostList, error)
	TargetErrors(ctx context.Context, targetID int64, limit int) ([]store.ErrorGroup, error)
	Pages(ctx context.Context, q store.PageQuery) (store.PageList, error)
	Search(ctx context.Context, q store.SearchQuery) (store.SearchResults, error)
	PageDetail(ctx context.Context, urlID int64) (store.PageDetail, error)
	FetchHistory(ctx context.Context, urlID int64, limit int) ([]store.Fetch, error)
	Retrying(ctx context.Context, f store.URLFilter) (store.URLList, error)
	Failed(ctx context.Context, f store.URLFilter) (store.URLList, error)
	CountDeadLetters(ctx context.Context, f store.DeadLetterFilter) (store.Total, error)
	ExportPages(ctx context.Context, targetID int64, withText bool, fn func(store.ExportRow) error) error

	PauseTarget(ctx context.Context, id int64) (store.Target, error)
	ResumeTarget(ctx context.Context, id int64) (store.Target, error)
	CancelTarget(ctx context.Context, id int64) (store.Target, error)
	DeleteTarget(ctx context.Context, id int64) (store.Target, error)
	RecrawlTarget(ctx context.Context, id int64) (store.Target, error)
	UpdateTarget(ctx context.Context, id int64, edit func(target.Spec) (target.Spec, error)) (store.Target, error)
}

// apiError is the JSON error body: a message and, for validation errors, the field at fault.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// maxBodyBytes bounds an API request body.
const maxBodyBytes = 1 << 20

// decodeJSON reads the request body as exactly one JSON value into v. A body over
// maxBodyBytes answers 413; unknown fields, wrong types, data after the value and strings
// holding NUL characters (which PostgreSQL text cannot store) answer 400 naming the field.
func decodeJSON(c echo.Context, v any) error {
	body := http.MaxBytesReader(c.Response(), c.Request().Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		if err != nil {
			if e := jsonError(err); !isFieldError(e) {
				return e
			}
		}
		return &fieldError{"body", "must hold one JSON value, with nothing after it"}
	}
	if field := nulField(reflect.ValueOf(v), ""); field != "" {
		return &fieldError{field, "must not contain NUL characters"}
	}
	return nil
}

func isFieldError(err error) bool {
	var fe *fieldError
	return errors.As(err, &fe)
}

// jsonError turns a decoding error into the answer: 413 for a body over the limit, else a 400
// naming the field when the decoder knows it.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var me *http.MaxBytesError
	switch {
	case errors.As(err, &me):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", me.Limit))
	case errors.As(err, &te):
		return &fieldError{te.Field, "has the wrong type, want " + te.Type.String()}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &fieldError{strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "is not a known field"}
	default:
		return &fieldError{"body", "is not valid JSON: " + err.Error()}
	}
}

// nulField returns the JSON path of the first string in v that holds a NUL character, or "".
func nulField(v reflect.Value, path string) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return nulField(v.Elem(), path)
	case reflect.String:
		if strings.IndexByte(v.String(), 0) >= 0 {
			if path == "" {
				return "body"
			}
			return path
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if f.Anonymous && f.Tag.Get("json") == "" {
				name = path
			} else if path != "" {
				name = path + "." + name
			}
			if p := nulField(v.Field(i), name); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p := nulField(v.Index(i), path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			k := fmt.Sprint(it.Key().Interface())
			if strings.IndexByte(k, 0) >= 0 {
				return path
			}
			name := k
			if path != "" {
				name = path + "." + k
			}
			if p := nulField(it.Value(), name); p != "" {
				return p
			}
		}
	}
	return ""
}

package integrated

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
)

// listPaged answers a list request: it applies $filter (fields known to
// field), $skip, $top, $maxpagesize and $skipToken over fetch, renders each
// item and writes {value, nextLink}. extra is carried into nextLink.
func listPaged[T any, R any](w http.ResponseWriter, r *http.Request, fetch func(ferry.ListOptions) (ferry.Page[T], error),
	zero T, field func(T) func(string) (string, bool), render func(T) (R, error), extra url.Values) error {
	p, err := arm.ParsePaging(r)
	if err != nil {
		return err
	}
	f, err := arm.ParseFilter(p.Filter)
	if err != nil {
		return err
	}
	if err := checkFilterFields(f, zero, field); err != nil {
		return err
	}
	var keep func(T) bool
	if len(f) > 0 {
		keep = func(x T) bool { return f.Match(field(x)) }
	}
	p.Extra = extra
	items, next, err := arm.Paginate(r, p, fetch, keep)
	if err != nil {
		return err
	}
	out := make([]R, 0, len(items))
	for _, it := range items {
		v, err := render(it)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return httpapi.WriteJSON(w, http.StatusOK, arm.List[R]{Value: out, NextLink: next})
}

// slicePages pages over a slice already in memory, with the index as the
// cursor.
func slicePages[T any](items []T) func(ferry.ListOptions) (ferry.Page[T], error) {
	return func(o ferry.ListOptions) (ferry.Page[T], error) {
		start := 0
		if o.After != "" {
			n, err := strconv.Atoi(o.After)
			if err != nil || n < 0 {
				return ferry.Page[T]{}, arm.Errorf(ferry.EINVALID, arm.CodeBadRequest, "The $skipToken value is not valid.")
			}
			start = min(n, len(items))
		}
		end := min(start+o.PageLimit(), len(items))
		pg := ferry.Page[T]{Items: items[start:end]}
		if end < len(items) {
			pg.Next = strconv.Itoa(end)
		}
		return pg, nil
	}
}

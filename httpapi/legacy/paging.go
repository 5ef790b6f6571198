package legacy

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
)

// ContinuationHeader carries the token of the next page on a request.
const ContinuationHeader = "Sphere-Continuation"

// Collection is a page of a legacy list.
type Collection[T any] struct {
	Items             []T
	ContinuationToken *string
}

// continuation is what a continuation token holds: the list it belongs
// to, so that a token of one list or tenant is refused by another, and
// the store's keyset position.
type continuation struct {
	List   string `json:"l"`
	Tenant string `json:"t"`
	After  string `json:"a"`
}

// paging reads ?maxPageSize= and the Sphere-Continuation header of a list
// request. Returns EINVALID for a bad size or a token that is not one of
// this list's.
func paging(r *http.Request, list string) (ferry.ListOptions, error) {
	var opt ferry.ListOptions
	if s := r.URL.Query().Get("maxPageSize"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 1 {
			return opt, badRequest("The maxPageSize '%s' is not valid: it must be a positive integer.", truncate(s, 20))
		}
		opt.Limit = int(min(n, ferry.MaxPageSize))
	}
	tok := r.Header.Get(ContinuationHeader)
	if tok == "" {
		return opt, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	var c continuation
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	if err != nil || c.List != list || c.Tenant != tenantIDOf(r) || c.After == "" {
		return opt, badRequest("The continuation token is not valid for this list.")
	}
	opt.After = c.After
	return opt, nil
}

func tenantIDOf(r *http.Request) string {
	if c := tenant(r); c != nil {
		return c.TenantID
	}
	return ""
}

// writePage writes a page of items as a Collection, with the token of the
// next page when there is one.
func writePage[T, U any](w http.ResponseWriter, r *http.Request, list string, p ferry.Page[T], conv func(T) U) error {
	out := Collection[U]{Items: make([]U, 0, len(p.Items))}
	for _, it := range p.Items {
		out.Items = append(out.Items, conv(it))
	}
	if p.Next != "" {
		raw, err := json.Marshal(continuation{List: list, Tenant: tenantIDOf(r), After: p.Next})
		if err != nil {
			return err
		}
		tok := base64.RawURLEncoding.EncodeToString(raw)
		out.ContinuationToken = &tok
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

package arm

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-iot/ferry"
)

// Paging holds the paging query parameters of a list request.
type Paging struct {
	Top         int    // $top: items in all pages together; 0 means no bound
	Skip        int    // $skip: items to pass over first
	MaxPageSize int    // $maxpagesize: items per page; 0 means the default
	Filter      string // $filter, raw
	// Extra holds query parameters to carry into nextLink, such as the
	// body filter of a POST list action (its nextLink is followed by GET).
	Extra url.Values
	token skipToken
}

// skipToken is the opaque continuation in $skipToken: the store's cursor
// and what is left of $top.
type skipToken struct {
	After     string `json:"a,omitempty"`
	Remaining int    `json:"r,omitempty"` // items left under $top; 0 means no bound
}

// ParsePaging reads $top, $skip, $maxpagesize, $skipToken and $filter.
// Returns InvalidRequestContent (400) for values that are not numbers in
// range or a token Ferry did not issue.
func ParsePaging(r *http.Request) (Paging, error) {
	q := r.URL.Query()
	var p Paging
	var err error
	if p.Top, err = queryInt(q, "$top", 1); err != nil {
		return p, err
	}
	if p.Skip, err = queryInt(q, "$skip", 0); err != nil {
		return p, err
	}
	if p.MaxPageSize, err = queryInt(q, "$maxpagesize", 1); err != nil {
		return p, err
	}
	p.Filter = q.Get("$filter")
	if t := q.Get("$skipToken"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || json.Unmarshal(b, &p.token) != nil || p.token.Remaining < 0 {
			return p, Errorf(ferry.EINVALID, CodeBadRequest, "The $skipToken value is not valid.").WithTarget("$skipToken")
		}
		// The token carries what is left of $top and what $skip passed.
		p.Top, p.Skip = p.token.Remaining, 0
	}
	return p, nil
}

func queryInt(q url.Values, name string, min int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > 1<<30 {
		return 0, Errorf(ferry.EINVALID, CodeBadRequest, "The query parameter '%s' value '%s' is not valid: it must be an integer of at least %d.", name, s, min).WithTarget(name)
	}
	return n, nil
}

// pageSize returns the number of items this page may hold.
func (p Paging) pageSize() int {
	n := ferry.DefaultPageSize
	if p.MaxPageSize > 0 {
		n = min(p.MaxPageSize, ferry.MaxPageSize)
	}
	if p.Top > 0 {
		n = min(n, p.Top)
	}
	return n
}

// Paginate fetches one page of a list through fetch (a keyset-paged store
// list), applying $skip, $top, $maxpagesize and the continuation, and keeps
// only the items for which keep returns true (nil keeps all). It returns
// the page's items and, when more may follow, the nextLink.
func Paginate[T any](r *http.Request, p Paging, fetch func(ferry.ListOptions) (ferry.Page[T], error), keep func(T) bool) ([]T, string, error) {
	after := p.token.After
	items := make([]T, 0)
	// $skip passes over matching items first.
	for skip := p.Skip; skip > 0; {
		pg, err := fetch(ferry.ListOptions{After: after, Limit: min(skip, ferry.MaxPageSize)})
		if err != nil {
			return nil, "", err
		}
		for _, it := range pg.Items {
			if keep == nil || keep(it) {
				skip--
			}
		}
		after = pg.Next
		if pg.Next == "" {
			return items, "", nil
		}
	}
	size := p.pageSize()
	for len(items) < size {
		// Ask for exactly what is missing, so that every fetched item is
		// either returned or filtered out and the cursor stays exact.
		pg, err := fetch(ferry.ListOptions{After: after, Limit: size - len(items)})
		if err != nil {
			return nil, "", err
		}
		for _, it := range pg.Items {
			if keep == nil || keep(it) {
				items = append(items, it)
			}
		}
		after = pg.Next
		if pg.Next == "" {
			return items, "", nil
		}
	}
	remaining := 0
	if p.Top > 0 {
		remaining = p.Top - len(items)
		if remaining <= 0 {
			return items, "", nil
		}
	}
	return items, nextLink(r, p.Extra, skipToken{After: after, Remaining: remaining}), nil
}

// nextLink returns the absolute URL of the next page: the request's URL
// with $skipToken set to the continuation and $skip and $top removed
// (their effect lives in the token), plus extra.
func nextLink(r *http.Request, extra url.Values, t skipToken) string {
	b, _ := json.Marshal(t)
	q := r.URL.Query()
	for k, v := range extra {
		q[k] = v
	}
	q.Del("$skip")
	q.Del("$top")
	q.Set("$skipToken", base64.RawURLEncoding.EncodeToString(b))
	u := url.URL{Scheme: Scheme(r), Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	return u.String()
}

// Scheme returns the scheme the client used.
func Scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		return p
	}
	return "http"
}

// Condition is one comparison of a $filter expression.
type Condition struct {
	Field string // property path as written, e.g. "properties/deviceGroupId"
	Op    string // "eq", "ne", "startswith", "contains"
	Value string
}

// Filter is a conjunction of conditions; the empty filter keeps everything.
type Filter []Condition

// ParseFilter parses the simple OData forms the Sphere API and CLI use:
// comparisons `field eq 'value'` / `field ne 'value'` (values quoted with
// single quotes, ” escaping a quote, or bare true/false/numbers) and
// `startswith(field,'value')` / `contains(field,'value')`, joined by `and`.
// Returns InvalidRequestContent for anything else.
func ParseFilter(s string) (Filter, error) {
	var f Filter
	rest := strings.TrimSpace(s)
	bad := func() (Filter, error) {
		return nil, Errorf(ferry.EINVALID, CodeBadRequest, "The $filter expression '%s' is not supported. Use comparisons such as \"name eq 'value'\" joined by 'and'.", s).WithTarget("$filter")
	}
	for rest != "" {
		var c Condition
		var ok bool
		if c, rest, ok = parseCondition(rest); !ok {
			return bad()
		}
		f = append(f, c)
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		low := strings.ToLower(rest)
		if !strings.HasPrefix(low, "and ") {
			return bad()
		}
		rest = strings.TrimSpace(rest[4:])
		if rest == "" {
			return bad()
		}
	}
	return f, nil
}

func parseCondition(s string) (Condition, string, bool) {
	low := strings.ToLower(s)
	for _, fn := range []string{"startswith", "contains"} {
		if strings.HasPrefix(low, fn+"(") {
			inner := s[len(fn)+1:]
			field, after, ok := strings.Cut(inner, ",")
			if !ok {
				return Condition{}, "", false
			}
			val, after, ok := parseValue(strings.TrimSpace(after))
			if !ok {
				return Condition{}, "", false
			}
			after = strings.TrimSpace(after)
			if !strings.HasPrefix(after, ")") {
				return Condition{}, "", false
			}
			return Condition{Field: strings.TrimSpace(field), Op: fn, Value: val}, after[1:], true
		}
	}
	field, after, ok := strings.Cut(s, " ")
	if !ok || field == "" {
		return Condition{}, "", false
	}
	after = strings.TrimSpace(after)
	op, after, ok := strings.Cut(after, " ")
	if !ok {
		return Condition{}, "", false
	}
	op = strings.ToLower(op)
	if op != "eq" && op != "ne" {
		return Condition{}, "", false
	}
	val, after, ok := parseValue(strings.TrimSpace(after))
	if !ok {
		return Condition{}, "", false
	}
	return Condition{Field: field, Op: op, Value: val}, after, true
}

func parseValue(s string) (string, string, bool) {
	if strings.HasPrefix(s, "'") {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				return b.String(), s[i+1:], true
			}
			b.WriteByte(s[i])
		}
		return "", "", false
	}
	end := strings.IndexAny(s, " )")
	if end < 0 {
		end = len(s)
	}
	if end == 0 {
		return "", "", false
	}
	return s[:end], s[end:], true
}

// Match reports whether the item whose properties get returns satisfies
// every condition. Field names are compared case-insensitively, with or
// without a "properties/" prefix; values case-insensitively, as the Sphere
// service does. A condition on a field get does not know fails.
func (f Filter) Match(get func(field string) (string, bool)) bool {
	for _, c := range f {
		field := strings.TrimPrefix(strings.ToLower(c.Field), "properties/")
		v, ok := get(field)
		if !ok {
			return false
		}
		lv, lc := strings.ToLower(v), strings.ToLower(c.Value)
		var m bool
		switch c.Op {
		case "eq":
			m = lv == lc
		case "ne":
			m = lv != lc
		case "startswith":
			m = strings.HasPrefix(lv, lc)
		case "contains":
			m = strings.Contains(lv, lc)
		}
		if !m {
			return false
		}
	}
	return true
}

// Fields returns the lower-cased field names the filter uses, so a handler
// can reject fields it cannot filter on.
func (f Filter) Fields() []string {
	var out []string
	for _, c := range f {
		out = append(out, strings.TrimPrefix(strings.ToLower(c.Field), "properties/"))
	}
	return out
}

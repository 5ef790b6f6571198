package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
)

// table describes how records of type T are kept: in a SQL table with typed
// columns (keys first) and the whole record as a JSON document in "doc".
// A table whose type has an ETag also has an "etag" column.
type table[T any] struct {
	name string             // SQL table
	what string             // the record's name in messages, e.g. "hub"
	key  []string           // primary-key columns
	cols []string           // further typed columns
	row  func(v *T) []any   // the values of key then cols
	etag func(v *T) *string // nil when T has no ETag
}

func (t *table[T]) allCols() []string {
	c := append(append([]string{}, t.key...), t.cols...)
	c = append(c, "doc")
	if t.etag != nil {
		c = append(c, "etag")
	}
	return c
}

func (t *table[T]) values(v *T) ([]any, error) {
	doc, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t.what, err)
	}
	vals := append(t.row(v), string(doc))
	if t.etag != nil {
		vals = append(vals, *t.etag(v))
	}
	return vals, nil
}

func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}

func (t *table[T]) notFound() error {
	return ferry.Errorf(ferry.ENOTFOUND, "The %s was not found.", t.what)
}

// insert stores a new record, with a new ETag.
func (t *table[T]) insert(ctx context.Context, d *dialect, q querier, v *T) error {
	return t.put(ctx, d, q, v, false)
}

// upsert creates or replaces a record by its key, with a new ETag.
func (t *table[T]) upsert(ctx context.Context, d *dialect, q querier, v *T) error {
	return t.put(ctx, d, q, v, true)
}

func (t *table[T]) put(ctx context.Context, d *dialect, q querier, v *T, replace bool) error {
	var old string
	if t.etag != nil {
		old = *t.etag(v)
		*t.etag(v) = ferry.NewETag()
	}
	vals, err := t.values(v)
	if err == nil {
		_, err = q.ExecContext(ctx, t.putSQL(replace), vals...)
	}
	if err != nil {
		if t.etag != nil {
			*t.etag(v) = old
		}
		return fmt.Errorf("store %s: %w", t.what, d.mapErr(err, t.what))
	}
	return nil
}

// putSQL is the statement of put.
func (t *table[T]) putSQL(replace bool) string {
	cols := t.allCols()
	s := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", t.name, strings.Join(cols, ", "), placeholders(1, len(cols)))
	if replace {
		var set []string
		for _, c := range cols[len(t.key):] {
			set = append(set, c+" = excluded."+c)
		}
		s += fmt.Sprintf(" ON CONFLICT (%s) DO UPDATE SET %s", strings.Join(t.key, ", "), strings.Join(set, ", "))
	}
	return s
}

// update replaces an existing record if ifMatch matches its ETag, and sets
// a new ETag. Returns ENOTFOUND or EPRECONDITION.
func (t *table[T]) update(ctx context.Context, d *dialect, q querier, v *T, ifMatch string) error {
	var old string
	if t.etag != nil {
		old = *t.etag(v)
		*t.etag(v) = ferry.NewETag()
	}
	err := t.updateRow(ctx, d, q, v, ifMatch)
	if err != nil && t.etag != nil {
		*t.etag(v) = old
	}
	return err
}

func (t *table[T]) updateRow(ctx context.Context, d *dialect, q querier, v *T, ifMatch string) error {
	vals, err := t.values(v)
	if err != nil {
		return err
	}
	cols := t.allCols()
	keys, rest := vals[:len(t.key)], vals[len(t.key):]
	var set []string
	for i, col := range cols[len(t.key):] {
		set = append(set, fmt.Sprintf("%s = $%d", col, i+1))
	}
	c := cond{n: len(rest)}
	for i, k := range t.key {
		c.eq(k, keys[i])
	}
	ifMatch = normalizeETag(ifMatch)
	if ifMatch != "" && t.etag != nil {
		c.eq("etag", ifMatch)
	}
	s := fmt.Sprintf("UPDATE %s SET %s%s", t.name, strings.Join(set, ", "), c.where())
	res, err := q.ExecContext(ctx, s, append(rest, c.args...)...)
	if err != nil {
		return fmt.Errorf("update %s: %w", t.what, d.mapErr(err, t.what))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update %s: %w", t.what, err)
	} else if n == 0 {
		return t.missOrMismatch(ctx, q, keys)
	}
	return nil
}

// missOrMismatch says why a conditional write touched no row.
func (t *table[T]) missOrMismatch(ctx context.Context, q querier, keys []any) error {
	ok, err := t.exists(ctx, q, keys)
	if err != nil {
		return err
	}
	if !ok {
		return t.notFound()
	}
	return ferry.Errorf(ferry.EPRECONDITION, "The %s was changed by someone else (ETag mismatch).", t.what)
}

func (t *table[T]) keyCond(keys []any) *cond {
	c := &cond{}
	for i, k := range t.key {
		c.eq(k, keys[i])
	}
	return c
}

func (t *table[T]) exists(ctx context.Context, q querier, keys []any) (bool, error) {
	c := t.keyCond(keys)
	var one int
	err := q.QueryRowContext(ctx, "SELECT 1 FROM "+t.name+c.where(), c.args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", t.what, err)
	}
	return true, nil
}

// del removes a record by key if ifMatch matches. Returns ENOTFOUND or
// EPRECONDITION.
func (t *table[T]) del(ctx context.Context, d *dialect, q querier, keys []any, ifMatch string) error {
	c := t.keyCond(keys)
	ifMatch = normalizeETag(ifMatch)
	if ifMatch != "" && t.etag != nil {
		c.eq("etag", ifMatch)
	}
	res, err := q.ExecContext(ctx, "DELETE FROM "+t.name+c.where(), c.args...)
	if err != nil {
		return fmt.Errorf("delete %s: %w", t.what, d.mapDeleteErr(err, t.what))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete %s: %w", t.what, err)
	} else if n == 0 {
		return t.missOrMismatch(ctx, q, keys)
	}
	return nil
}

// get returns the one record matching c. Returns ENOTFOUND.
func (t *table[T]) get(ctx context.Context, q querier, c *cond) (*T, error) {
	var doc []byte
	err := q.QueryRowContext(ctx, "SELECT doc FROM "+t.name+c.where(), c.args...).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, t.notFound()
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.what, err)
	}
	return t.decode(doc)
}

func (t *table[T]) getKey(ctx context.Context, q querier, keys ...any) (*T, error) {
	return t.get(ctx, q, t.keyCond(keys))
}

// getForUpdate reads a record to change it in the same transaction. On
// PostgreSQL it locks the row so that no other writer changes it meanwhile;
// SQLite's immediate transactions already exclude other writers.
func (t *table[T]) getForUpdate(ctx context.Context, d *dialect, q querier, keys ...any) (*T, error) {
	c := t.keyCond(keys)
	if d.postgres {
		c.parts[len(c.parts)-1] += " FOR UPDATE"
	}
	return t.get(ctx, q, c)
}

func (t *table[T]) decode(doc []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(doc, v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", t.what, err)
	}
	return v, nil
}

// all returns every record matching c in the given order (SQL).
func (t *table[T]) all(ctx context.Context, q querier, c *cond, order string) ([]*T, error) {
	s := "SELECT doc FROM " + t.name + c.where()
	if order != "" {
		s += " ORDER BY " + order
	}
	rows, err := q.QueryContext(ctx, s, c.args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t.what, err)
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("list %s: %w", t.what, err)
		}
		v, err := t.decode(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", t.what, err)
	}
	return out, nil
}

// count counts the records matching c.
func (t *table[T]) count(ctx context.Context, q querier, c *cond) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.name+c.where(), c.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", t.what, err)
	}
	return n, nil
}

// list returns a keyset-paged list of the records matching c, ordered by
// the columns order (which must identify a row), descending when desc.
func (t *table[T]) list(ctx context.Context, q querier, c *cond, order []string, desc bool, opt ferry.ListOptions) (ferry.Page[*T], error) {
	if c == nil {
		c = &cond{}
	}
	if opt.After != "" {
		after, err := decodeCursor(opt.After, len(order))
		if err != nil {
			return ferry.Page[*T]{}, err
		}
		op := ">"
		if desc {
			op = "<"
		}
		if len(order) == 1 {
			c.add(order[0]+" "+op+" ?", after[0])
		} else {
			c.add("("+strings.Join(order, ", ")+") "+op+" ("+strings.TrimSuffix(strings.Repeat("?, ", len(order)), ", ")+")", after...)
		}
	}
	dir := ""
	if desc {
		dir = " DESC"
	}
	limit := opt.PageLimit()
	s := fmt.Sprintf("SELECT doc, %s FROM %s%s ORDER BY %s LIMIT %d",
		strings.Join(order, ", "), t.name, c.where(), strings.Join(order, dir+", ")+dir, limit+1)
	rows, err := q.QueryContext(ctx, s, c.args...)
	if err != nil {
		return ferry.Page[*T]{}, fmt.Errorf("list %s: %w", t.what, err)
	}
	defer rows.Close()
	page := ferry.Page[*T]{Items: []*T{}}
	var last []any
	for rows.Next() {
		if len(page.Items) == limit {
			next, err := encodeCursor(last)
			if err != nil {
				return ferry.Page[*T]{}, err
			}
			page.Next = next
			break
		}
		var doc []byte
		keys := make([]any, len(order))
		dest := []any{&doc}
		for i := range keys {
			dest = append(dest, &keys[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return ferry.Page[*T]{}, fmt.Errorf("list %s: %w", t.what, err)
		}
		v, err := t.decode(doc)
		if err != nil {
			return ferry.Page[*T]{}, err
		}
		page.Items = append(page.Items, v)
		last = keys
	}
	if err := rows.Err(); err != nil {
		return ferry.Page[*T]{}, fmt.Errorf("list %s: %w", t.what, err)
	}
	return page, nil
}

// encodeCursor makes the opaque continuation token of a page: the key of
// its last row.
func encodeCursor(keys []any) (string, error) {
	for i, k := range keys {
		switch x := k.(type) {
		case []byte:
			keys[i] = string(x)
		case time.Time:
			keys[i] = x.UnixNano()
		}
	}
	b, err := json.Marshal(keys)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func decodeCursor(s string, n int) ([]any, error) {
	bad := ferry.Errorf(ferry.EINVALID, "The continuation token is not valid.")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var keys []any
	if err := dec.Decode(&keys); err != nil || len(keys) != n {
		return nil, bad
	}
	for i, k := range keys {
		switch x := k.(type) {
		case json.Number:
			v, err := strconv.ParseInt(string(x), 10, 64)
			if err != nil {
				return nil, bad
			}
			keys[i] = v
		case string:
		default:
			return nil, bad
		}
	}
	return keys, nil
}

// cond builds a WHERE clause with numbered placeholders.
type cond struct {
	parts []string
	args  []any
	n     int // placeholders used before this clause
}

// add appends a condition whose ? placeholders take args in order.
func (c *cond) add(expr string, args ...any) *cond {
	var b strings.Builder
	for _, r := range expr {
		if r == '?' {
			c.n++
			fmt.Fprintf(&b, "$%d", c.n)
			continue
		}
		b.WriteRune(r)
	}
	c.parts = append(c.parts, b.String())
	c.args = append(c.args, args...)
	return c
}

func (c *cond) eq(col string, v any) *cond { return c.add(col+" = ?", v) }

// in adds col IN (vs); an empty non-nil vs matches nothing.
func (c *cond) in(col string, vs []string) *cond {
	if len(vs) == 0 {
		return c.add("1 = 0")
	}
	args := make([]any, len(vs))
	for i, v := range vs {
		args[i] = v
	}
	return c.add(col+" IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(vs)), ", ")+")", args...)
}

func (c *cond) where() string {
	if len(c.parts) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c.parts, " AND ")
}

// normalizeETag strips quotes; "*" matches anything, as "" does.
func normalizeETag(s string) string {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	if s == "*" {
		return ""
	}
	return s
}

// nullable maps "" to NULL, for optional foreign keys and ARM locations.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nanos maps a time to the integer kept in ordering columns.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func lower(s string) string { return strings.ToLower(s) }

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// fromNanos is the inverse of nanos.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

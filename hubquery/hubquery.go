// Package hubquery parses and evaluates the subset of the IoT Hub query
// language that Ferry supports: `SELECT * FROM devices [WHERE ...]` and
// `SELECT * FROM devices.jobs [WHERE ...]`, and bare conditions as jobs and
// hub device groups store them (`deviceId IN ['a','b']`).
//
// A condition compares dotted paths into a JSON document (the twin as the
// query API returns it: deviceId, status, connectionState, modelId, tags.x,
// properties.desired.x, properties.reported.x, ...) with literals, using
// =, !=, <>, <, <=, >, >=, IN, NIN, AND, OR, NOT and parentheses. Paths that
// do not exist compare false, as in IoT Hub. `$template` is an alias of
// modelId, the way IoT Central names a device's template.
package hubquery

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ferry-iot/ferry"
)

// Source is the collection a query reads.
type Source string

// Query sources.
const (
	Devices     Source = "devices"
	DevicesJobs Source = "devices.jobs"
)

// Query is a parsed `SELECT * FROM source [WHERE cond]`.
type Query struct {
	Source Source
	Where  Expr // nil: every document
}

// Match reports whether doc satisfies the query's condition.
func (q *Query) Match(doc map[string]any) bool {
	return q.Where == nil || q.Where.Match(doc)
}

// Expr is a parsed condition.
type Expr interface {
	// Match reports whether doc satisfies the condition.
	Match(doc map[string]any) bool
}

// Parse parses a full query. Returns EINVALID with a message naming the
// problem for anything outside the supported subset.
func Parse(s string) (*Query, error) {
	p, err := newParser(s)
	if err != nil {
		return nil, err
	}
	if !p.keyword("SELECT") {
		return nil, p.errorf("expected SELECT")
	}
	if !p.symbol("*") {
		return nil, p.errorf("only SELECT * is supported")
	}
	if !p.keyword("FROM") {
		return nil, p.errorf("expected FROM")
	}
	t := p.next()
	if t.kind != tokIdent {
		return nil, p.errorf("expected a collection after FROM")
	}
	q := &Query{}
	switch strings.ToLower(t.text) {
	case "devices":
		q.Source = Devices
	case "devices.jobs":
		q.Source = DevicesJobs
	default:
		return nil, p.errorf("unsupported collection %q", t.text)
	}
	if p.keyword("WHERE") {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		q.Where = e
	}
	if p.peek().kind != tokEOF {
		return nil, p.errorf("unexpected %q", p.peek().text)
	}
	return q, nil
}

// ParseCondition parses what follows WHERE. An empty string matches every
// document (a nil Expr is returned with no error).
func ParseCondition(s string) (Expr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	p, err := newParser(s)
	if err != nil {
		return nil, err
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tokEOF {
		return nil, p.errorf("unexpected %q", p.peek().text)
	}
	return e, nil
}

// Lookup returns the value at a dotted path in doc, and whether it exists.
func Lookup(doc map[string]any, path string) (any, bool) {
	if path == "$template" {
		path = "modelId"
	}
	var cur any = doc
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

type andExpr struct{ l, r Expr }

func (e andExpr) Match(d map[string]any) bool { return e.l.Match(d) && e.r.Match(d) }

type orExpr struct{ l, r Expr }

func (e orExpr) Match(d map[string]any) bool { return e.l.Match(d) || e.r.Match(d) }

type notExpr struct{ e Expr }

func (e notExpr) Match(d map[string]any) bool { return !e.e.Match(d) }

// operand is a path or a literal.
type operand struct {
	path    string
	literal any
	isPath  bool
}

func (o operand) value(d map[string]any) (any, bool) {
	if o.isPath {
		return Lookup(d, o.path)
	}
	return o.literal, true
}

type cmpExpr struct {
	l, r operand
	op   string
}

func (e cmpExpr) Match(d map[string]any) bool {
	a, ok := e.l.value(d)
	if !ok {
		return false
	}
	b, ok := e.r.value(d)
	if !ok {
		return false
	}
	return compare(a, b, e.op)
}

type inExpr struct {
	l      operand
	values []any
	negate bool
}

func (e inExpr) Match(d map[string]any) bool {
	a, ok := e.l.value(d)
	if !ok {
		return false
	}
	for _, v := range e.values {
		if compare(a, v, "=") {
			return !e.negate
		}
	}
	return e.negate
}

// compare applies op to two JSON values; values of different types are
// never equal and never ordered.
func compare(a, b any, op string) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		if !ok {
			return op == "!="
		}
		c := strings.Compare(x, y)
		return cmpResult(c, op)
	case float64:
		y, ok := b.(float64)
		if !ok {
			return op == "!="
		}
		switch {
		case x < y:
			return cmpResult(-1, op)
		case x > y:
			return cmpResult(1, op)
		}
		return cmpResult(0, op)
	case bool:
		y, ok := b.(bool)
		if !ok {
			return op == "!="
		}
		switch op {
		case "=":
			return x == y
		case "!=":
			return x != y
		}
		return false
	case nil:
		switch op {
		case "=":
			return b == nil
		case "!=":
			return b != nil
		}
		return false
	}
	// Objects and arrays compare only for inequality with scalars.
	return op == "!="
}

func cmpResult(c int, op string) bool {
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokSymbol
)

type token struct {
	kind tokKind
	text string
	num  float64
	pos  int
}

type parser struct {
	src  string
	toks []token
	i    int
}

func newParser(s string) (*parser, error) {
	if len(s) > 8192 {
		return nil, ferry.Errorf(ferry.EINVALID, "The query is longer than 8192 characters.")
	}
	p := &parser{src: s}
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || c == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(s); j++ {
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c { // doubled quote escapes itself
						b.WriteByte(c)
						j++
						continue
					}
					break
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, ferry.Errorf(ferry.EINVALID, "Query syntax error at %d: unterminated string.", i)
			}
			p.toks = append(p.toks, token{kind: tokString, text: b.String(), pos: i})
			i = j + 1
		case c >= '0' && c <= '9' || c == '-' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
				j++
			}
			f, err := strconv.ParseFloat(s[i:j], 64)
			if err != nil {
				return nil, ferry.Errorf(ferry.EINVALID, "Query syntax error at %d: bad number %q.", i, s[i:j])
			}
			p.toks = append(p.toks, token{kind: tokNumber, text: s[i:j], num: f, pos: i})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && (isIdentStart(s[j]) || s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == '-') {
				j++
			}
			p.toks = append(p.toks, token{kind: tokIdent, text: s[i:j], pos: i})
			i = j
		default:
			sym := string(c)
			if i+1 < len(s) {
				switch two := s[i : i+2]; two {
				case "!=", "<>", "<=", ">=":
					sym = two
				}
			}
			if !strings.Contains("*=<>!(),[]", string(c)) {
				return nil, ferry.Errorf(ferry.EINVALID, "Query syntax error at %d: unexpected %q.", i, string(c))
			}
			p.toks = append(p.toks, token{kind: tokSymbol, text: sym, pos: i})
			i += len(sym)
		}
	}
	p.toks = append(p.toks, token{kind: tokEOF, pos: len(s)})
	return p, nil
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || c == '@'
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(k string) bool {
	if t := p.peek(); t.kind == tokIdent && strings.EqualFold(t.text, k) {
		p.i++
		return true
	}
	return false
}

func (p *parser) symbol(s string) bool {
	if t := p.peek(); t.kind == tokSymbol && t.text == s {
		p.i++
		return true
	}
	return false
}

func (p *parser) errorf(format string, args ...any) error {
	return ferry.Errorf(ferry.EINVALID, "Query syntax error at %d: %s.", p.peek().pos, fmt.Sprintf(format, args...))
}

func (p *parser) or() (Expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orExpr{l, r}
	}
	return l, nil
}

func (p *parser) and() (Expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = andExpr{l, r}
	}
	return l, nil
}

func (p *parser) not() (Expr, error) {
	if p.keyword("NOT") {
		e, err := p.not()
		if err != nil {
			return nil, err
		}
		return notExpr{e}, nil
	}
	return p.primary()
}

func (p *parser) primary() (Expr, error) {
	if p.symbol("(") {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.symbol(")") {
			return nil, p.errorf("expected )")
		}
		return e, nil
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	if p.keyword("IN") {
		vals, err := p.list()
		return inExpr{l: l, values: vals}, err
	}
	if p.keyword("NIN") {
		vals, err := p.list()
		return inExpr{l: l, values: vals, negate: true}, err
	}
	if p.keyword("NOT") {
		if !p.keyword("IN") {
			return nil, p.errorf("expected IN after NOT")
		}
		vals, err := p.list()
		return inExpr{l: l, values: vals, negate: true}, err
	}
	t := p.next()
	if t.kind != tokSymbol {
		return nil, p.errorf("expected a comparison operator")
	}
	op := t.text
	switch op {
	case "=", "!=", "<", "<=", ">", ">=":
	case "<>":
		op = "!="
	default:
		return nil, p.errorf("unexpected %q", t.text)
	}
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	return cmpExpr{l: l, r: r, op: op}, nil
}

func (p *parser) list() ([]any, error) {
	if !p.symbol("[") && !p.symbol("(") {
		return nil, p.errorf("expected [ after IN")
	}
	var vals []any
	for {
		o, err := p.operand()
		if err != nil {
			return nil, err
		}
		if o.isPath {
			return nil, p.errorf("IN takes literals only")
		}
		vals = append(vals, o.literal)
		if p.symbol(",") {
			continue
		}
		if p.symbol("]") || p.symbol(")") {
			return vals, nil
		}
		return nil, p.errorf("expected , or ]")
	}
}

func (p *parser) operand() (operand, error) {
	start := p.i
	t := p.next()
	switch t.kind {
	case tokString:
		return operand{literal: t.text}, nil
	case tokNumber:
		return operand{literal: t.num}, nil
	case tokIdent:
		switch strings.ToLower(t.text) {
		case "true":
			return operand{literal: true}, nil
		case "false":
			return operand{literal: false}, nil
		case "null":
			return operand{literal: nil}, nil
		}
		return operand{path: t.text, isPath: true}, nil
	}
	p.i = start
	return operand{}, p.errorf("expected a property or a value")
}

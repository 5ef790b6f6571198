package rbac

import (
	"strings"

	"github.com/ferry-iot/ferry"
)

// pattern is a compiled action pattern: lower-cased, with "*" matching any
// run of characters (segments included), as Azure RBAC matches
// "Microsoft.Authorization/*/read". Because the literal parts keep their
// slashes, matching respects segments: "Microsoft.Compute/*" does not match
// "Microsoft.ComputeSchedule/x/read".
type pattern struct {
	raw   string
	lower string
	any   bool // the pattern is "*"
	wild  bool // the pattern holds a "*"
}

func compilePattern(p string) pattern {
	l := strings.ToLower(strings.TrimSpace(p))
	return pattern{raw: p, lower: l, any: l == "*", wild: strings.IndexByte(l, '*') >= 0}
}

// match reports whether the action (any case) matches the pattern.
func (p *pattern) match(action string) bool {
	if p.any {
		return action != ""
	}
	if !p.wild {
		return equalFoldASCII(action, p.lower)
	}
	return globFold(p.lower, action)
}

// MatchAction reports whether an action string matches an Actions or
// NotActions entry of a role: case-insensitively, with "*" standing for
// any run of characters.
func MatchAction(pat, action string) bool {
	p := compilePattern(pat)
	return p.match(action)
}

// lowerASCII folds an ASCII upper-case letter; other bytes pass unchanged,
// which keeps the comparison allocation-free.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFoldASCII compares s with an already lower-cased t.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

// globFold matches s against a lower-cased glob whose only metacharacter is
// "*". It backtracks to the last star only, so it runs in O(len(p)*len(s))
// at worst and without allocating.
func globFold(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == lowerASCII(s[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// ValidateRoleDefinition checks a role definition the way ARM does before it
// is stored: a name, at least one permission block with at least one action
// or data action, no empty patterns, and assignable scopes that are ARM
// scopes. Returns EINVALID naming the first problem.
func ValidateRoleDefinition(d *ferry.RoleDefinition) error {
	if d == nil || strings.TrimSpace(d.Name) == "" {
		return ferry.Errorf(ferry.EINVALID, "The role definition must have a roleName.")
	}
	if len(d.Permissions) == 0 {
		return ferry.Errorf(ferry.EINVALID, "The role definition %q must have at least one permission.", d.Name)
	}
	for _, p := range d.Permissions {
		if len(p.Actions) == 0 && len(p.DataActions) == 0 {
			return ferry.Errorf(ferry.EINVALID, "Every permission of the role definition %q must grant an action or a data action.", d.Name)
		}
		for _, list := range [][]string{p.Actions, p.NotActions, p.DataActions, p.NotDataActions} {
			for _, a := range list {
				if strings.TrimSpace(a) == "" || strings.Contains(a, "**") {
					return ferry.Errorf(ferry.EINVALID, "The action %q in the role definition %q is not valid.", a, d.Name)
				}
			}
		}
	}
	if len(d.AssignableScopes) == 0 {
		return ferry.Errorf(ferry.EINVALID, "The role definition %q must have at least one assignable scope.", d.Name)
	}
	for _, s := range d.AssignableScopes {
		if _, err := ferry.ParseResourceID(s); err != nil {
			return ferry.Errorf(ferry.EINVALID, "The assignable scope %q of the role definition %q is not valid.", s, d.Name)
		}
	}
	return nil
}

// Assignable reports whether a role definition may be assigned at scope:
// some assignable scope of the role contains it.
func Assignable(d *ferry.RoleDefinition, scope string) bool {
	for _, s := range d.AssignableScopes {
		if ferry.ScopeContains(s, scope) {
			return true
		}
	}
	return false
}

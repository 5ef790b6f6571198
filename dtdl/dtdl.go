// Package dtdl reads device models written in the Digital Twins Definition
// Language (DTDL v2 and v3) as operators import them into Ferry as device
// templates, and finds out whether a model lets Ferry move its devices.
//
// It accepts three shapes: one Interface document; an array of Interfaces
// (a model with its component interfaces alongside, as the models
// repository's expanded files hold them); and IoT Central's device-template
// document, {"@id", "@type":["ModelDefinition","DeviceModel"], "displayName",
// "capabilityModel":{...}}. It checks what Ferry relies on (identifiers,
// types, names, the shape of contents) rather than the whole language.
//
// A model supports DeviceMove when it has a component whose schema is the
// IoT Central migrator's dtmi:azureiot:DeviceMigration;1 interface (the
// device then answers the method "<component>*DeviceMove"), or when its root
// interface, directly or through extends, declares a command named
// DeviceMove (the device answers "DeviceMove").
package dtdl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// MigrationInterface is the DTMI of the IoT Central migrator's DeviceMigration
// component interface, which declares the DeviceMove command.
const MigrationInterface = "dtmi:azureiot:DeviceMigration;1"

// MoveCommand is the name of the command that moves a device.
const MoveCommand = "DeviceMove"

// Template is what Ferry keeps of an imported model.
type Template struct {
	// ID is the template's DTMI: the document's @id (the Central
	// template's @id, or the root interface's).
	ID string
	// DisplayName is the template's name for people: a string, or the
	// English (else the first) entry of a language map; the ID if none.
	DisplayName string
	// CapabilityModel is the root interface, with the interfaces an array
	// document gives alongside it placed inline where it refers to them,
	// as IoT Central shows a template's capabilityModel.
	CapabilityModel json.RawMessage
	// HasDeviceMove says whether the model declares DeviceMove, in a
	// DeviceMigration component or at its root.
	HasDeviceMove bool
	// MigrationComponent is the name of the DeviceMigration component, or
	// "" when DeviceMove is declared at the root (or not at all).
	MigrationComponent string
}

// MaxDepth bounds how deeply extends may chain, as DTDL does (v2 allows
// 10 levels).
const MaxDepth = 10

// dtmiPattern is the DTMI syntax of DTDL v2 and v3: path segments of
// letters, digits and underscores that start with a letter (or
// underscores followed by a letter or digit) and do not end with an
// underscore, then a version: a major number and, in v3, a minor one.
var dtmiPattern = regexp.MustCompile(`^dtmi:(?:_+[A-Za-z0-9]|[A-Za-z])(?:[A-Za-z0-9_]*[A-Za-z0-9])?(?::(?:_+[A-Za-z0-9]|[A-Za-z])(?:[A-Za-z0-9_]*[A-Za-z0-9])?)*;[1-9][0-9]{0,8}(?:\.[1-9][0-9]{0,5})?$`)

// MaxDTMILength is the longest DTMI DTDL allows.
const MaxDTMILength = 2048

// ValidDTMI reports whether s is a digital twin model identifier with a
// version, such as "dtmi:com:example:Thermostat;1".
func ValidDTMI(s string) bool {
	return len(s) <= MaxDTMILength && dtmiPattern.MatchString(s)
}

// Parse reads a model in one of the three shapes and returns the template.
// Its errors say what is wrong and where, in words safe to show the
// person who sent the document.
func Parse(data []byte) (*Template, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("the document is empty")
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("the document is not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("the document holds more than one JSON value")
	}
	p := &parser{byID: map[string]map[string]any{}}
	t := &Template{}
	var root map[string]any
	switch v := doc.(type) {
	case []any:
		r, err := p.array(v, "")
		if err != nil {
			return nil, err
		}
		root = r
	case map[string]any:
		if cm, ok := v["capabilityModel"]; ok {
			// IoT Central's device template.
			if err := p.centralTypes(v["@type"]); err != nil {
				return nil, err
			}
			id, err := dtmiField(v, "@id", "the device template")
			if err != nil {
				return nil, err
			}
			t.ID = id
			if t.DisplayName, err = displayName(v, "the device template"); err != nil {
				return nil, err
			}
			switch c := cm.(type) {
			case map[string]any:
				if err := p.interfaceDoc(c, "capabilityModel"); err != nil {
					return nil, err
				}
				root = c
			case []any:
				if root, err = p.array(c, "capabilityModel"); err != nil {
					return nil, err
				}
			default:
				return nil, errors.New("capabilityModel must be an Interface object or an array of them")
			}
			break
		}
		if err := p.interfaceDoc(v, ""); err != nil {
			return nil, err
		}
		root = v
	default:
		return nil, errors.New("the document must be an Interface, an array of Interfaces or an IoT Central device template")
	}
	if t.ID == "" {
		t.ID, _ = root["@id"].(string)
		if t.ID == "" {
			return nil, errors.New("the root interface has no @id")
		}
	}
	if t.DisplayName == "" {
		var err error
		if t.DisplayName, err = displayName(root, "the root interface"); err != nil {
			return nil, err
		}
	}
	if t.DisplayName == "" {
		t.DisplayName = t.ID
	}
	comp, cmd, err := p.findMove(root, 0, map[string]bool{})
	if err != nil {
		return nil, err
	}
	switch {
	case comp != "":
		t.HasDeviceMove, t.MigrationComponent = true, comp
	case cmd:
		t.HasDeviceMove = true
	}
	p.steps = 0
	cmOut := p.inline(root, map[string]bool{})
	if t.CapabilityModel, err = json.Marshal(cmOut); err != nil {
		return nil, fmt.Errorf("encode capability model: %w", err)
	}
	return t, nil
}

// parser holds the interfaces seen, by @id, so that references between
// the interfaces of one document resolve.
type parser struct {
	byID  map[string]map[string]any
	steps int // interfaces visited while resolving references
}

// maxSteps bounds the interfaces visited while resolving references, so
// that a document whose interfaces refer to each other many times over
// costs little.
const maxSteps = 10000

// centralTypes checks a Central template's @type: it names ModelDefinition
// or DeviceModel (Central sends both).
func (p *parser) centralTypes(v any) error {
	for _, t := range typeList(v) {
		if t == "ModelDefinition" || t == "DeviceModel" {
			return nil
		}
	}
	return errors.New(`a device template's @type must be ["ModelDefinition","DeviceModel"]`)
}

// array reads an array of interfaces and returns its root: the one no
// other interface of the array refers to (the first such).
func (p *parser) array(items []any, where string) (map[string]any, error) {
	if len(items) == 0 {
		return nil, fmt.Errorf("%sthe array holds no interface", prefix(where))
	}
	var ifaces []map[string]any
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%sitem %d is not an Interface object", prefix(where), i)
		}
		if err := p.interfaceDoc(m, fmt.Sprintf("%s[%d]", where, i)); err != nil {
			return nil, err
		}
		if _, ok := m["@id"].(string); !ok {
			return nil, fmt.Errorf("%sitem %d has no @id", prefix(where), i)
		}
		ifaces = append(ifaces, m)
	}
	referenced := map[string]bool{}
	for _, m := range ifaces {
		for _, ref := range references(m) {
			referenced[ref] = true
		}
	}
	for _, m := range ifaces {
		if id := m["@id"].(string); !referenced[id] {
			return m, nil
		}
	}
	return ifaces[0], nil
}

// references lists the DTMIs an interface names in extends and as
// component schemas.
func references(m map[string]any) []string {
	var out []string
	for _, e := range asList(m["extends"]) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	for _, c := range asList(m["contents"]) {
		cm, ok := c.(map[string]any)
		if !ok || !hasType(cm, "Component") {
			continue
		}
		if s, ok := cm["schema"].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// interfaceDoc checks an Interface and what it holds, and records it and
// every interface defined inline in it by @id.
func (p *parser) interfaceDoc(m map[string]any, where string) error {
	what := "the interface"
	if where != "" {
		what = "the interface at " + where
	}
	if !hasType(m, "Interface") {
		return fmt.Errorf("%s must have @type Interface", what)
	}
	if id, ok := m["@id"]; ok {
		s, _ := id.(string)
		if !ValidDTMI(s) {
			return fmt.Errorf("%s has an @id that is not a DTMI like dtmi:example:Thermostat;1: %q", what, truncate(fmt.Sprint(id)))
		}
		if old, dup := p.byID[s]; dup && !sameMap(old, m) {
			return fmt.Errorf("the interface %s is defined twice", s)
		}
		p.byID[s] = m
	} else if where == "" {
		return fmt.Errorf("%s has no @id", what)
	}
	if id, _ := m["@id"].(string); id != "" {
		what = "the interface " + id
	}
	if _, err := displayName(m, what); err != nil {
		return err
	}
	if c, ok := m["@context"]; ok {
		switch c.(type) {
		case string, []any:
		default:
			return fmt.Errorf("%s has an @context that is not a string or an array", what)
		}
	}
	for i, e := range asList(m["extends"]) {
		switch x := e.(type) {
		case string:
			if !ValidDTMI(x) {
				return fmt.Errorf("%s extends %q, which is not a DTMI", what, truncate(x))
			}
		case map[string]any:
			if err := p.interfaceDoc(x, fmt.Sprintf("%s extends[%d]", what, i)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: extends must name interfaces by DTMI or define them inline", what)
		}
	}
	contents, ok := m["contents"]
	if !ok {
		return nil
	}
	list, ok := contents.([]any)
	if !ok {
		return fmt.Errorf("%s: contents must be an array", what)
	}
	for i, c := range list {
		cm, ok := c.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: contents[%d] is not an object", what, i)
		}
		if len(typeList(cm["@type"])) == 0 {
			return fmt.Errorf("%s: contents[%d] has no @type", what, i)
		}
		name, _ := cm["name"].(string)
		if name == "" {
			return fmt.Errorf("%s: contents[%d] has no name", what, i)
		}
		if hasType(cm, "Component") {
			switch s := cm["schema"].(type) {
			case string:
				if !ValidDTMI(s) {
					return fmt.Errorf("%s: the component %s has a schema that is not a DTMI: %q", what, truncate(name), truncate(s))
				}
			case map[string]any:
				if err := p.interfaceDoc(s, fmt.Sprintf("%s component %s", what, truncate(name))); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%s: the component %s needs a schema: an interface's DTMI or an inline Interface", what, truncate(name))
			}
		}
	}
	return nil
}

// findMove looks for a DeviceMigration component or a DeviceMove command
// in an interface and the interfaces it extends.
func (p *parser) findMove(m map[string]any, depth int, seen map[string]bool) (component string, command bool, err error) {
	if depth > MaxDepth {
		return "", false, fmt.Errorf("extends is nested more than %d levels deep", MaxDepth)
	}
	if p.steps++; p.steps > maxSteps {
		return "", false, errors.New("the interfaces refer to each other too many times")
	}
	if id, _ := m["@id"].(string); id != "" {
		if seen[id] {
			return "", false, fmt.Errorf("the interface %s extends itself", id)
		}
		seen[id] = true
		defer delete(seen, id)
	}
	for _, c := range asList(m["contents"]) {
		cm, _ := c.(map[string]any)
		name, _ := cm["name"].(string)
		switch {
		case hasType(cm, "Component"):
			if component == "" && isMigrationSchema(cm) {
				component = name
			}
		case hasType(cm, "Command"):
			command = command || name == MoveCommand
		}
	}
	for _, e := range asList(m["extends"]) {
		var base map[string]any
		switch x := e.(type) {
		case string:
			base = p.byID[x] // an interface defined elsewhere is not known here
		case map[string]any:
			base = x
		}
		if base == nil {
			continue
		}
		c, cmd, err := p.findMove(base, depth+1, seen)
		if err != nil {
			return "", false, err
		}
		if component == "" {
			component = c
		}
		command = command || cmd
	}
	return component, command, nil
}

// isMigrationSchema reports whether a component is the DeviceMigration
// one, found as the IoT Central migrator finds it: by the component's @id
// or its schema's (a DTMI string, or an inline interface's @id).
func isMigrationSchema(c map[string]any) bool {
	if id, _ := c["@id"].(string); id == MigrationInterface {
		return true
	}
	switch s := c["schema"].(type) {
	case string:
		return s == MigrationInterface
	case map[string]any:
		id, _ := s["@id"].(string)
		return id == MigrationInterface
	}
	return false
}

// inline returns m with the component schemas and extends that name other
// interfaces of the document replaced by those interfaces.
func (p *parser) inline(m map[string]any, seen map[string]bool) map[string]any {
	id, _ := m["@id"].(string)
	if id != "" {
		seen[id] = true
		defer delete(seen, id)
	}
	resolve := func(v any) any {
		s, ok := v.(string)
		if !ok {
			if x, ok := v.(map[string]any); ok {
				return p.inline(x, seen)
			}
			return v
		}
		if x := p.byID[s]; x != nil && !seen[s] && p.steps < maxSteps {
			p.steps++
			return p.inline(x, seen)
		}
		return v
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	if ext, ok := m["extends"]; ok {
		if l, ok := ext.([]any); ok {
			nl := make([]any, len(l))
			for i, e := range l {
				nl[i] = resolve(e)
			}
			out["extends"] = nl
		} else {
			out["extends"] = resolve(ext)
		}
	}
	if l, ok := m["contents"].([]any); ok {
		nl := make([]any, len(l))
		for i, c := range l {
			cm, ok := c.(map[string]any)
			if !ok || !hasType(cm, "Component") {
				nl[i] = c
				continue
			}
			nc := make(map[string]any, len(cm))
			for k, v := range cm {
				nc[k] = v
			}
			nc["schema"] = resolve(cm["schema"])
			nl[i] = nc
		}
		out["contents"] = nl
	}
	return out
}

// displayName returns a displayName that is a string or a language map
// (English first, else the first language in order); "" when there is none.
func displayName(m map[string]any, what string) (string, error) {
	v, ok := m["displayName"]
	if !ok || v == nil {
		return "", nil
	}
	switch d := v.(type) {
	case string:
		return d, nil
	case map[string]any:
		langs := make([]string, 0, len(d))
		for k, s := range d {
			if _, ok := s.(string); !ok {
				return "", fmt.Errorf("%s has a displayName whose %q entry is not a string", what, truncate(k))
			}
			langs = append(langs, k)
		}
		if s, ok := d["en"].(string); ok {
			return s, nil
		}
		sort.Strings(langs)
		if len(langs) == 0 {
			return "", nil
		}
		return d[langs[0]].(string), nil
	}
	return "", fmt.Errorf("%s has a displayName that is neither a string nor a language map", what)
}

// dtmiField returns the DTMI in m[key].
func dtmiField(m map[string]any, key, what string) (string, error) {
	v, ok := m[key]
	if !ok {
		return "", fmt.Errorf("%s has no %s", what, key)
	}
	s, _ := v.(string)
	if !ValidDTMI(s) {
		return "", fmt.Errorf("%s has an %s that is not a DTMI like dtmi:example:Thermostat;1: %q", what, key, truncate(fmt.Sprint(v)))
	}
	return s, nil
}

// typeList returns @type as a list: DTDL allows a string or an array.
func typeList(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func hasType(m map[string]any, want string) bool {
	for _, t := range typeList(m["@type"]) {
		if t == want {
			return true
		}
	}
	return false
}

// asList returns v as a list: a single value is a list of one.
func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

func sameMap(a, b map[string]any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func prefix(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

// truncate shortens what an error quotes from the document.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

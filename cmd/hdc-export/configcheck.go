package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// checkYAML checks a config document against the fields of t (a struct)
// before it is decoded, so that every problem is named by its field path
// in the file's terms: an unknown field with the nearest known one, and a
// value of the wrong kind with the kind wanted. It names no Go type.
func checkYAML(doc *yaml.Node, t reflect.Type) error {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		doc = doc.Content[0]
	}
	var errs []error
	checkNode(doc, t, "", &errs)
	return errors.Join(errs...)
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkNode checks n against t at path ("" for the top level).
func checkNode(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value leaves the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t == reflect.TypeFor[time.Duration]() || t == reflect.TypeFor[time.Time]() {
		checkLeaf(n, t, path, errs)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, fmt.Errorf("line %d: %s: want a mapping of fields, got %s", n.Line, pathName(path), nodeKind(n)))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, unknownField(k, path, fields))
				continue
			}
			checkNode(v, ft, joinPath(path, k.Value), errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			*errs = append(*errs, fmt.Errorf("line %d: %s: want a list, got %s", n.Line, pathName(path), nodeKind(n)))
			return
		}
		for i, e := range n.Content {
			checkNode(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, fmt.Errorf("line %d: %s: want a mapping, got %s", n.Line, pathName(path), nodeKind(n)))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkNode(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), errs)
		}
	default:
		checkLeaf(n, t, path, errs)
	}
}

// yamlLine is yaml.v3's "line N: " prefix of an error message.
var yamlLine = regexp.MustCompile(`^(yaml: unmarshal errors:\n\s*)?line \d+: `)

// checkLeaf decodes a single value into a fresh t and words a failure by
// the kind of value wanted.
func checkLeaf(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	var te *yaml.TypeError
	if reflect.PointerTo(t).Implements(unmarshalerType) && !errors.As(err, &te) {
		// The type's own message, which names its field already.
		*errs = append(*errs, fmt.Errorf("line %d: %s", n.Line, yamlLine.ReplaceAllString(err.Error(), "")))
		return
	}
	got := nodeKind(n)
	if n.Kind == yaml.ScalarNode {
		got = fmt.Sprintf("%q", n.Value)
	}
	*errs = append(*errs, fmt.Errorf("line %d: %s: want %s, got %s", n.Line, pathName(path), wantKind(t), got))
}

// wantKind describes the values of t in the file's terms.
func wantKind(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration such as 90s, 5m or 1h"
	case t == reflect.TypeFor[time.Time]():
		return "a time such as 2026-01-02T00:00:00Z"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a text value"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "another kind of value"
}

// nodeKind names what a node is.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// yamlFields maps the YAML names of t's fields to their types, with the
// fields of inline structs in place.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// unknownField words an unknown key, suggesting the nearest known field.
func unknownField(k *yaml.Node, path string, fields map[string]reflect.Type) error {
	where := "at top level"
	if path != "" {
		where = "in " + path
	}
	msg := fmt.Sprintf("line %d: unknown field %s %s", k.Line, k.Value, where)
	if s := nearest(k.Value, fields); s != "" {
		msg += "; did you mean " + s + "?"
	}
	return errors.New(msg)
}

// nearest returns the known name closest to name by edit distance, if it
// is close enough to be a likely typo ("" otherwise).
func nearest(name string, fields map[string]reflect.Type) string {
	best, bestD := "", 0
	for f := range fields {
		d := editDistance(strings.ToLower(name), f)
		if best == "" || d < bestD || d == bestD && f < best {
			best, bestD = f, d
		}
	}
	if best == "" || bestD > max(2, len(name)/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func pathName(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

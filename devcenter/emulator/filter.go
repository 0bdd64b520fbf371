package emulator

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// A filter tree (a template's condition or aggregation.condition) is
// compiled when the template is created or edited, so a bad tree is a 400
// that names the offending field, and applied to every row or group when a
// run's file is generated.
//
// Shapes accepted, all keys case-insensitive:
//
//	{"and": [node, ...], "or": [node, ...]}   a group; either array may be absent or empty
//	{"attribute": A, "operator": OP, "value": V}   a leaf, in a group or alone
//	{"condition": group}                        a nested group, in an array
//
// A group whose and and or are both non-empty matches when all of its and
// nodes and at least one of its or nodes match: (a1 AND a2 ...) AND (o1 OR
// o2 ...). The docs show both arrays side by side without saying how they
// combine; this reading keeps the and list mandatory and makes the or list
// one more mandatory alternative. An empty group ({} or empty arrays)
// matches everything. A bare group inside an array ({"and": [...]} without
// the "condition" wrapper) is accepted too.
//
// Operators (case-insensitive): EQ, NEQ, LT, GT, LTE, GTE, IN, LIKE. V is a
// JSON string as in the docs (a JSON number is accepted as its text). Values
// compare as compareValues says: as numbers for numeric columns, as times
// for date and time columns, otherwise as text ignoring letter case (EQ,
// NEQ, IN and LIKE included; the docs are silent, and the values they show
// are case-insensitive names). IN takes a comma-separated list ("US, DE";
// items are trimmed; a JSON array of strings is accepted too) and matches a
// value equal to any item. LIKE is SQL's: % matches any run of characters,
// _ exactly one, \ makes the next character literal; it matches the whole
// value, ignoring letter case.

// operator is a leaf's comparison.
type operator int

const (
	opEQ operator = iota
	opNEQ
	opLT
	opGT
	opLTE
	opGTE
	opIN
	opLIKE
)

var operatorNames = []string{opEQ: "EQ", opNEQ: "NEQ", opLT: "LT", opGT: "GT", opLTE: "LTE", opGTE: "GTE", opIN: "IN", opLIKE: "LIKE"}

// condition is a compiled filter tree node: a leaf, or a group of nodes.
// It is immutable, so safe for concurrent use.
type condition struct {
	leaf *comparison  // set for a leaf
	and  []*condition // group: all must match
	or   []*condition // group: one must match, if any
}

// comparison is a compiled leaf: row[index] op operand.
type comparison struct {
	index   int
	kind    valueKind
	op      operator
	operand string         // EQ..GTE
	set     []string       // IN
	like    *regexp.Regexp // LIKE
}

// attrResolver maps a leaf's attribute to the index of its value in the
// rows the condition is applied to, and the kind of that value. path names
// the attribute field for error messages.
type attrResolver func(attr, path string) (index int, kind valueKind, err error)

// compileCondition compiles the filter tree raw (nil or empty: nil, which
// matches everything). field is the tree's name in error messages.
func compileCondition(raw json.RawMessage, field string, resolve attrResolver) (*condition, error) {
	if raw == nil {
		return nil, nil
	}
	c, err := compileNode(raw, field, resolve, true)
	if err != nil || c.empty() {
		return nil, err
	}
	return c, nil
}

// match reports whether row satisfies c; a nil c matches everything.
func (c *condition) match(row []string) bool {
	if c == nil {
		return true
	}
	if c.leaf != nil {
		return c.leaf.match(row)
	}
	for _, n := range c.and {
		if !n.match(row) {
			return false
		}
	}
	if len(c.or) == 0 {
		return true
	}
	for _, n := range c.or {
		if n.match(row) {
			return true
		}
	}
	return false
}

// empty reports whether c is a group without leaves, which matches everything.
func (c *condition) empty() bool {
	if c.leaf != nil {
		return false
	}
	for _, list := range [][]*condition{c.and, c.or} {
		for _, n := range list {
			if !n.empty() {
				return false
			}
		}
	}
	return true
}

func (c *comparison) match(row []string) bool {
	v := row[c.index]
	switch c.op {
	case opEQ:
		return compareValues(v, c.operand, c.kind) == 0
	case opNEQ:
		return compareValues(v, c.operand, c.kind) != 0
	case opLT:
		return compareValues(v, c.operand, c.kind) < 0
	case opGT:
		return compareValues(v, c.operand, c.kind) > 0
	case opLTE:
		return compareValues(v, c.operand, c.kind) <= 0
	case opGTE:
		return compareValues(v, c.operand, c.kind) >= 0
	case opIN:
		for _, item := range c.set {
			if compareValues(v, item, c.kind) == 0 {
				return true
			}
		}
		return false
	case opLIKE:
		return c.like.MatchString(v)
	}
	panic(fmt.Sprintf("unknown operator %d", c.op))
}

// compileNode compiles one node at path. top says it is the tree's root,
// where the "condition" wrapper is not expected.
func compileNode(raw json.RawMessage, path string, resolve attrResolver, top bool) (*condition, error) {
	fields, err := objectFields(raw, path, "and", "or", "condition", "attribute", "operator", "value")
	if err != nil {
		return nil, err
	}
	_, isGroup := fields["and"]
	if _, ok := fields["or"]; ok {
		isGroup = true
	}
	_, isWrapper := fields["condition"]
	isLeaf := false
	for _, k := range []string{"attribute", "operator", "value"} {
		if _, ok := fields[k]; ok {
			isLeaf = true
		}
	}
	switch {
	case isWrapper && (isGroup || isLeaf), isGroup && isLeaf:
		return nil, badRequest("%s mixes the keys of a leaf {attribute, operator, value}, a group {and, or} and a nested {condition}", path)
	case isLeaf:
		return compileLeaf(fields, path, resolve)
	case isWrapper && top:
		return nil, badRequest("%s.condition: a nested condition belongs inside an and/or array", path)
	case isWrapper:
		return compileNode(fields["condition"], path+".condition", resolve, false)
	}
	group := &condition{}
	for _, part := range []struct {
		key  string
		list *[]*condition
	}{{"and", &group.and}, {"or", &group.or}} {
		raw := fields[part.key]
		if raw == nil {
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, badRequest("%s.%s must be an array of conditions", path, part.key)
		}
		for i, item := range items {
			n, err := compileNode(item, fmt.Sprintf("%s.%s[%d]", path, part.key, i), resolve, false)
			if err != nil {
				return nil, err
			}
			*part.list = append(*part.list, n)
		}
	}
	return group, nil
}

// compileLeaf compiles {attribute, operator, value}.
func compileLeaf(fields map[string]json.RawMessage, path string, resolve attrResolver) (*condition, error) {
	var attr, opName string
	if err := json.Unmarshal(orNull(fields["attribute"]), &attr); err != nil || strings.TrimSpace(attr) == "" {
		return nil, badRequest("%s.attribute is required: a column name (a string)", path)
	}
	if err := json.Unmarshal(orNull(fields["operator"]), &opName); err != nil || opName == "" {
		return nil, badRequest("%s.operator is required: one of %s", path, strings.Join(operatorNames, ", "))
	}
	op, ok := parseOperator(opName)
	if !ok {
		return nil, badRequest("%s.operator %q is not supported: use one of %s", path, opName, strings.Join(operatorNames, ", "))
	}
	index, kind, err := resolve(strings.TrimSpace(attr), path+".attribute")
	if err != nil {
		return nil, err
	}
	c := &comparison{index: index, kind: kind, op: op}
	valuePath := path + ".value"
	switch op {
	case opIN:
		if c.set, err = setValue(fields["value"], valuePath); err != nil {
			return nil, err
		}
	case opLIKE:
		pattern, err := scalarValue(fields["value"], valuePath)
		if err != nil {
			return nil, err
		}
		c.like = likePattern(pattern)
	default:
		if c.operand, err = scalarValue(fields["value"], valuePath); err != nil {
			return nil, err
		}
	}
	return &condition{leaf: c}, nil
}

// parseOperator resolves an operator name, ignoring letter case and spaces.
func parseOperator(s string) (operator, bool) {
	for op, name := range operatorNames {
		if strings.EqualFold(strings.TrimSpace(s), name) {
			return operator(op), true
		}
	}
	return 0, false
}

// scalarValue decodes a leaf's value: a JSON string, or a JSON number as
// its text.
func scalarValue(raw json.RawMessage, path string) (string, error) {
	if isNull(raw) {
		return "", badRequest("%s is required (a string)", path)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", badRequest("%s must be a string, not %s", path, raw)
}

// setValue decodes IN's value: a comma-separated string, or a JSON array
// of strings. Items are trimmed.
func setValue(raw json.RawMessage, path string) ([]string, error) {
	if isNull(raw) {
		return nil, badRequest("%s is required (a comma-separated list in a string)", path)
	}
	var items []string
	if err := json.Unmarshal(raw, &items); err != nil {
		s, err := scalarValue(raw, path)
		if err != nil {
			return nil, badRequest("%s must be a comma-separated list in a string, or an array of strings", path)
		}
		items = strings.Split(s, ",")
	}
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	return items, nil
}

// likePattern compiles a SQL LIKE pattern to an anchored, case-insensitive
// regular expression (linear-time, so any pattern is safe).
func likePattern(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?is)\A`)
	escaped := false
	for _, r := range pattern {
		switch {
		case escaped:
			b.WriteString(regexp.QuoteMeta(string(r)))
			escaped = false
		case r == '\\':
			escaped = true
		case r == '%':
			b.WriteString(`.*`)
		case r == '_':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	if escaped {
		b.WriteString(`\\`)
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String())
}

// objectFields decodes the JSON object raw into its fields, keyed by the
// lower-case form of the allowed key each one matches case-insensitively.
// Other keys, repeated keys and non-objects are 400s naming path.
func objectFields(raw json.RawMessage, path string, allowed ...string) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, badRequest("%s must be an object", path)
	}
	fields := make(map[string]json.RawMessage, len(obj))
	for key, value := range obj {
		i := indexFold(allowed, key)
		if i < 0 {
			return nil, badRequest("%s has an unknown key %q: use %s", path, key, strings.Join(allowed, ", "))
		}
		if _, dup := fields[allowed[i]]; dup {
			return nil, badRequest("%s has the key %q twice", path, allowed[i])
		}
		fields[allowed[i]] = value
	}
	return fields, nil
}

// indexFold is the index of the first of list equal to s ignoring case, or -1.
func indexFold(list []string, s string) int {
	for i, x := range list {
		if strings.EqualFold(x, s) {
			return i
		}
	}
	return -1
}

// orNull maps an absent value to JSON null, which decodes into any target
// without an error, leaving it unchanged.
func orNull(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage("null")
	}
	return raw
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

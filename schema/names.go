package schema

import (
	"regexp"
	"strings"
	"unicode"
)

// SnakeCase turns a report header name into a lake column name: lower case
// ASCII letters, digits and single underscores, starting with a letter or
// underscore. "CPUName" → "cpu_name", "SUM(EventCount)" → "sum_event_count",
// "Weird Name!" → "weird_name". An empty result becomes "col".
func SnakeCase(s string) string {
	var b strings.Builder
	rs := []rune(s)
	sep := false // an underscore is pending
	for i, r := range rs {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			sep = b.Len() > 0
			continue
		}
		if unicode.IsUpper(r) && i > 0 && b.Len() > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				sep = true
			}
		}
		if sep {
			b.WriteByte('_')
			sep = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	out := b.String()
	if out == "" {
		return "col"
	}
	if out[0] >= '0' && out[0] <= '9' {
		out = "_" + out
	}
	return out
}

var aggregateRE = regexp.MustCompile(`^\s*([A-Za-z]+)\s*\(\s*([A-Za-z0-9_]+)\s*\)\s*$`)

// Aggregate splits an aggregate header such as "SUM(EventCount)" into its
// upper-cased function and its argument. ok is false for anything else.
func Aggregate(header string) (fn, arg string, ok bool) {
	m := aggregateRE.FindStringSubmatch(header)
	if m == nil {
		return "", "", false
	}
	fn = strings.ToUpper(m[1])
	switch fn {
	case "SUM", "AVG", "COUNT", "DCOUNT", "MIN", "MAX":
		return fn, m[2], true
	}
	return "", "", false
}

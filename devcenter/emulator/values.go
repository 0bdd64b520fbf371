package emulator

import (
	"cmp"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// valueKind is how the values of a column compare. Every value in a report
// file is text; the kind says how to read it when comparing.
type valueKind int

const (
	kindString valueKind = iota // case-insensitive text
	kindNumber                  // decimal numbers
	kindTime                    // dates and timestamps
)

// columnKind is the kind of a column's values. The docs give no types;
// these follow the legacy APIs (section 5 of the reference).
func columnKind(c columnID) valueKind {
	switch c {
	case colEventCount, colReportID:
		return kindNumber
	case colFailureDate, colFailureDateTime, colCabExpirationTime, colCabCollectionTime:
		return kindTime
	default:
		return kindString
	}
}

// timeLayouts are the layouts a time value may have, tried in order: every
// layout the rows use (rowTimeLayout and each Options.DateFormat), plus the
// ISO 8601 forms clients are likely to send. Values without a zone are UTC.
var timeLayouts = []string{
	rowTimeLayout,
	"2006-01-02",
	time.RFC3339,
	"2006-01-02T15:04:05",
	"1/2/2006",
	"1/2/2006 15:04:05",
	"010206",
}

// compareValues orders a and b as values of kind: numerically when kind is
// kindNumber and both parse as numbers, chronologically when kind is
// kindTime and both parse as times, otherwise as text ignoring letter case.
// So an empty value (a row without a cab) compares as text, before any
// non-empty one.
func compareValues(a, b string, kind valueKind) int {
	switch kind {
	case kindNumber:
		if x, ok := parseNumber(a); ok {
			if y, ok := parseNumber(b); ok {
				return cmp.Compare(x, y)
			}
		}
	case kindTime:
		if x, ok := parseTime(a); ok {
			if y, ok := parseTime(b); ok {
				return x.Compare(y)
			}
		}
	}
	return compareFold(a, b)
}

// parseNumber parses s (surrounding spaces allowed) as a finite decimal number.
func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// parseTime parses s (surrounding spaces allowed) with the first of
// timeLayouts that fits.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// compareFold compares a and b rune by rune under simple lower-casing,
// without allocating: "Kernel" and "kernel" are equal.
func compareFold(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			if c := cmp.Compare(unicode.ToLower(ra), unicode.ToLower(rb)); c != 0 {
				return c
			}
		}
		a, b = a[na:], b[nb:]
	}
	return cmp.Compare(len(a), len(b))
}

// formatDecimal formats f with at most 6 fractional digits, trailing zeros
// (and a trailing point) trimmed: 3 → "3", 2.5 → "2.5", 1/3 → "0.333333".
func formatDecimal(f float64) string {
	s := strconv.FormatFloat(f, 'f', 6, 64)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "-0" {
		return "0"
	}
	return s
}

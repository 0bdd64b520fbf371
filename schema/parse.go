package schema

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Errors returned by the value parsers. They never contain the value, which
// may be personal data.
var (
	ErrNotDate      = errors.New("not a date")
	ErrNotTimestamp = errors.New("not a timestamp")
	ErrNotInteger   = errors.New("not an integer")
	ErrNotNumber    = errors.New("not a number")
)

// epochDays converts a civil date to days since 1970-01-01, checking that
// the date exists. It is Howard Hinnant's days_from_civil: time.Date did
// the same several times slower, and every row has a date or two.
func epochDays(y, m, d int) (int32, bool) {
	if y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	if m <= 2 {
		y-- // the year starts in March, so that Feb 29 is its last day
	}
	era := y / 400
	yoe := y - era*400                  // [0, 399]
	doy := (153*((m+9)%12)+2)/5 + d - 1 // [0, 365], from March 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int32(era*146097 + doe - 719468), true
}

// daysIn returns the number of days in month m of year y.
func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// digits parses s as an unsigned decimal of 1..9 digits.
func digits(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// yearMonthDay parses the digits of a "yyyy?mm?dd" date at the start of s;
// the caller checks the separators.
func yearMonthDay(s string) (y, m, d int, ok bool) {
	y, ok1 := digits(s[:4])
	m, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	return y, m, d, ok1 && ok2 && ok3
}

// ParseDate parses a FailureDate in every documented and observed format and
// returns days since 1970-01-01:
//
//	2026-11-20, 2026/11/20, 2026-11-20T05:35:32[.fff][Z], 2026-11-20 05:35:32
//	11/20/2026, 11/20/2026 12:00:00 AM (US month/day/year, as the legacy APIs)
//	112026 (the docs' "mmddyy"), 20261120 (yyyymmdd)
//
// Any time part is ignored: the date is the failure's calendar date as the
// report states it.
func ParseDate(s string) (int32, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "T "); i > 0 {
		s = s[:i]
	}
	var y, m, d int
	var ok bool
	switch {
	case len(s) == 10 && (s[4] == '-' || s[4] == '/') && s[7] == s[4]:
		y, m, d, ok = yearMonthDay(s)
	case strings.Count(s, "/") == 2:
		p := strings.Split(s, "/")
		m, ok = digits(p[0])
		if ok {
			d, ok = digits(p[1])
		}
		if ok && len(p[2]) == 4 {
			y, ok = digits(p[2])
		} else {
			ok = false
		}
	case len(s) == 6:
		var v int
		if v, ok = digits(s); ok {
			m, d, y = v/10000, v/100%100, 2000+v%100
		}
	case len(s) == 8:
		var v int
		if v, ok = digits(s); ok {
			y, m, d = v/10000, v/100%100, v%100
		}
	}
	if !ok {
		return 0, ErrNotDate
	}
	days, ok := epochDays(y, m, d)
	if !ok {
		return 0, ErrNotDate
	}
	return days, nil
}

// timestampLayouts are tried, in order, after the fast path. A value with no
// zone is UTC.
var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02",
	"1/2/2006 3:04:05 PM",
	"1/2/2006 15:04:05",
	"1/2/2006 3:04 PM",
	"1/2/2006 15:04",
	"1/2/2006",
}

// ParseTimestamp parses a report timestamp (FailureDateTime,
// CabExpirationTime, CabCollectionTime) and returns milliseconds since the
// Unix epoch, UTC. Accepted: "2006-01-02 15:04:05" or with a 'T', with or
// without fractional seconds and a zone ("Z", "+02:00"), US "1/2/2006
// 3:04:05 PM", and a bare date (midnight). A value without a zone is UTC.
func ParseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if ms, ok := fastTimestamp(s); ok {
		return ms, nil
	}
	for _, layout := range timestampLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, ErrNotTimestamp
}

// fastTimestamp handles exactly "yyyy-mm-dd hh:mm:ss" and the 'T' form, the
// overwhelmingly common case, without allocating.
func fastTimestamp(s string) (int64, bool) {
	if len(s) != 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	y, m, d, ok := yearMonthDay(s)
	if !ok {
		return 0, false
	}
	days, ok := epochDays(y, m, d)
	if !ok {
		return 0, false
	}
	h, ok1 := digits(s[11:13])
	mi, ok2 := digits(s[14:16])
	sec, ok3 := digits(s[17:19])
	if !ok1 || !ok2 || !ok3 || h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	return (int64(days)*86400 + int64(h)*3600 + int64(mi)*60 + int64(sec)) * 1000, true
}

// ParseInt64 parses a count. Integral floats such as "1.0" (the legacy APIs
// sent counts that way) are accepted; fractions are not.
func ParseInt64(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, ErrNotInteger
	}
	return int64(f), nil
}

// ParseFloat64 parses a finite decimal number.
func ParseFloat64(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, ErrNotNumber
	}
	return f, nil
}

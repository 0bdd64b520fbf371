package schema

import (
	"errors"
	"testing"
	"time"
)

func day(y int, m time.Month, d int) int32 {
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func TestParseDate(t *testing.T) {
	want := day(2019, 5, 20)
	for _, s := range []string{
		"2019-05-20", "2019/05/20", "2019-05-20T08:00:00", "2019-05-20 08:00:00",
		"2019-05-20T08:00:00.123Z", "5/20/2019", "05/20/2019", "5/20/2019 12:00:00 AM",
		"052019", "20190520", " 2019-05-20 ",
	} {
		got, err := ParseDate(s)
		if err != nil || got != want {
			t.Errorf("ParseDate(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "2019-02-30", "2019-13-01", "13/01/2019", "20/5/2019", "abc", "2019-5-20", "1/1/19", "00000000", "022919"} {
		if _, err := ParseDate(s); !errors.Is(err, ErrNotDate) {
			t.Errorf("ParseDate(%q) err = %v, want ErrNotDate", s, err)
		}
	}
	if got, _ := ParseDate("1970-01-01"); got != 0 {
		t.Errorf("epoch = %d", got)
	}
}

func TestParseTimestamp(t *testing.T) {
	base := time.Date(2017, 2, 14, 1, 4, 55, 0, time.UTC).UnixMilli()
	for s, want := range map[string]int64{
		"2017-02-14 01:04:55":       base,
		"2017-02-14T01:04:55":       base,
		"2017-02-14T01:04:55Z":      base,
		"2017-02-14T03:04:55+02:00": base,
		"2017-02-14 01:04:55.25":    base + 250,
		"2017-02-14T01:04:55.683":   base + 683,
		"2/14/2017 1:04:55 AM":      base,
		"2/14/2017 1:04:55 PM":      base + 12*3600*1000,
		"2017-02-14":                base - (1*3600+4*60+55)*1000,
	} {
		got, err := ParseTimestamp(s)
		if err != nil || got != want {
			t.Errorf("ParseTimestamp(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "yesterday", "2017-02-14 25:00:00", "2017-02-30 01:00:00"} {
		if _, err := ParseTimestamp(s); !errors.Is(err, ErrNotTimestamp) {
			t.Errorf("ParseTimestamp(%q) err = %v", s, err)
		}
	}
}

func TestParseInt64(t *testing.T) {
	for s, want := range map[string]int64{"7": 7, "-3": -3, "1.0": 1, " 42 ": 42, "1e3": 1000} {
		if got, err := ParseInt64(s); err != nil || got != want {
			t.Errorf("ParseInt64(%q) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"1.5", "x", "", "NaN", "1e30"} {
		if _, err := ParseInt64(s); !errors.Is(err, ErrNotInteger) {
			t.Errorf("ParseInt64(%q) err = %v", s, err)
		}
	}
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2019-05-20", "5/20/2019", "052019", "20190520", "2019-05-20T08:00:00Z", "", "//", "9999-12-31"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			return
		}
		// A parsed date round-trips through its ISO form.
		iso := time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02")
		if d2, err := ParseDate(iso); err != nil || d2 != d {
			t.Fatalf("ParseDate(%q) = %d but its ISO form %q gives %d, %v", s, d, iso, d2, err)
		}
	})
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2017-02-14 01:04:55", "2016-02-29T23:59:59", "2017-02-29 01:04:55", "0001-01-01 00:00:00", "2/14/2017 1:04:55 PM", "2017-02-14T01:04:55.683Z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseTimestamp(s) // must not panic
		// The fast path agrees with the time package on what it accepts.
		if ms, ok := fastTimestamp(s); ok {
			tm, err := time.ParseInLocation("2006-01-02 15:04:05", s[:10]+" "+s[11:], time.UTC)
			if err != nil || tm.UnixMilli() != ms {
				t.Fatalf("fastTimestamp(%q) = %d; time.Parse gives %d, %v", s, ms, tm.UnixMilli(), err)
			}
		}
	})
}

// TestEpochDaysMatchesTime checks every year, month and day, valid or not,
// against the time package.
func TestEpochDaysMatchesTime(t *testing.T) {
	for y := 0; y <= 10000; y++ {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				got, ok := epochDays(y, m, d)
				tm := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
				wantOK := y >= 1 && y <= 9999 && m >= 1 && m <= 12 && tm.Day() == d && int(tm.Month()) == m
				if ok != wantOK || ok && int64(got) != tm.Unix()/86400 {
					t.Fatalf("epochDays(%d, %d, %d) = %d, %v; want %d, %v", y, m, d, got, ok, tm.Unix()/86400, wantOK)
				}
			}
		}
	}
}

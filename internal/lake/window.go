package lake

import "time"

// Window is the retention window: the failure dates that may be kept on a
// given UTC day. With Days = 30 on 2026-11-21, it holds 2026-10-23 through
// 2026-11-22; 2026-10-22 and earlier are outside, and so is any date after
// tomorrow (a day's grace for clocks and time zones): data filed under a
// date that has not come would otherwise be kept past the limit.
type Window struct {
	First Date // oldest date kept
	Last  Date // newest date kept: the day after now
}

// NewWindow returns the window on the UTC day of now.
func NewWindow(now time.Time, days int) Window {
	today := DateOf(now)
	return Window{First: today - Date(days) + 1, Last: today + 1}
}

// Contains reports whether date d may be kept.
func (w Window) Contains(d Date) bool { return d >= w.First && d <= w.Last }

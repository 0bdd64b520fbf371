package lake

import "time"

// Window is the retention window: the failure dates that may be kept on a
// given UTC day. With Days = 30 on 2026-11-21, it holds 2026-10-23 through
// 2026-11-21 (and any later date); 2026-10-22 and earlier are outside.
type Window struct {
	First Date // oldest date kept
}

// NewWindow returns the window on the UTC day of now.
func NewWindow(now time.Time, days int) Window {
	return Window{First: DateOf(now) - Date(days) + 1}
}

// Contains reports whether date d may be kept.
func (w Window) Contains(d Date) bool { return d >= w.First }

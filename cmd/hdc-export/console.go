package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// console is the process's stderr: every log record, the summary table
// and the final error go through it. On a terminal it also shows a live
// progress line, which it clears before anything else is written and draws
// again after, so that a log line never runs into it.
//
// In JSON mode (see newLogger) it shows no progress line, and the final
// error is a JSON log record: every line on stderr is JSON.
type console struct {
	w   io.Writer
	tty bool // w is a terminal

	mu    sync.Mutex
	line  string    // the latest progress line, "" for none
	shown bool      // a progress line is on the screen
	drawn time.Time // when the progress line was last drawn
	log   *slog.Logger
	json  bool
}

// progressEvery is the least time between two redraws of the progress
// line (a log write redraws it at once).
const progressEvery = 100 * time.Millisecond

// newConsole wraps w; it shows progress only if w is a terminal.
func newConsole(w io.Writer) *console {
	return &console{w: w, tty: isTerminal(w)}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// setLogger records the process's logger (newLogger calls it): the final
// error goes through it in JSON mode, and JSON mode shows no progress.
func (c *console) setLogger(log *slog.Logger, json bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log, c.json = log, json
}

// Write writes p after clearing the progress line, and draws the line
// again after p if p ends a line. One slog record is one Write.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clear()
	n, err := c.w.Write(p)
	if c.line != "" && bytes.HasSuffix(p, []byte("\n")) {
		c.draw()
	}
	return n, err
}

// progress returns the progress display's setter, or nil when there is
// none to show (not a terminal, or JSON logs).
func (c *console) progress() func(string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tty || c.json {
		return nil
	}
	return c.setProgress
}

// setProgress replaces the progress line; "" removes it. Redraws are
// limited to one per progressEvery.
func (c *console) setProgress(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.line = line
	switch {
	case line == "":
		c.clear()
	case time.Since(c.drawn) >= progressEvery:
		c.draw()
	}
}

// clear erases the progress line if it is shown. c.mu is held.
func (c *console) clear() {
	if c.shown {
		_, _ = io.WriteString(c.w, "\r\033[K")
		c.shown = false
	}
}

// draw shows the progress line in place of the one shown. c.mu is held.
func (c *console) draw() {
	_, _ = fmt.Fprintf(c.w, "\r\033[K%s", c.line)
	c.shown, c.drawn = true, time.Now()
}

// fail reports the command's final error: a JSON log record in JSON mode,
// else a plain line.
func (c *console) fail(command string, err error) {
	c.setProgress("")
	c.mu.Lock()
	log, json := c.log, c.json
	c.mu.Unlock()
	if json && log != nil {
		log.Error("hdc-export "+command+" failed", "error", err.Error())
		return
	}
	fmt.Fprintf(c, "hdc-export %s: %v\n", command, err)
}

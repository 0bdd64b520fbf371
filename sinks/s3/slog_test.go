package s3_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"

	"github.com/hdc-export/hdc-export/sinks/s3"
)

// TestWithSlog: the SDK's warnings reach the slog logger as JSON records
// at warn level (its other messages at debug), never as plain lines.
func TestWithSlog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var lo config.LoadOptions
	if err := s3.WithSlog(log)(&lo); err != nil || lo.Logger == nil {
		t.Fatalf("no logger set: %v", err)
	}
	lo.Logger.Logf(logging.Warn, "Response has no supported checksum. Not validating response payload: %d", 1)
	lo.Logger.Logf(logging.Debug, "request %s", "x")
	var recs []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 2 || recs[0]["level"] != "WARN" || recs[0]["msg"] != "aws sdk: Response has no supported checksum. Not validating response payload: 1" || recs[1]["level"] != "DEBUG" {
		t.Errorf("records %v", recs)
	}
}

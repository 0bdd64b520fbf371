package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestExampleConfigsLoad loads every example config through the real
// loader, so the examples cannot rot.
func TestExampleConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	if len(files) < 2 {
		t.Fatalf("found %d example configs", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := LoadConfig(f, env(map[string]string{"HDC_CLIENT_SECRET": "s"}))
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Pipeline.Reports) == 0 || len(cfg.Pipeline.Reports[0].Template.Projection) == 0 {
				t.Errorf("templates not loaded: %+v", cfg.Pipeline.Reports)
			}
		})
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	tpl := `{"view":"IHVDriver","projection":["FailureDate","EventCount"],"dateRange":{"reportPeriod":"Last7Days"}}`
	if err := os.WriteFile(filepath.Join(dir, "templates", "t.json"), []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const validBody = `
devcenter: {emulator: true, tenant_id: t, client_id: c}
sink: {url: ./lake}
reports:
  - {name: ihv, template_file: templates/t.json}
`

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"retention above the legal limit", validBody + "retention: {days: 31}\n", `retention.days: "31" is not allowed: want a whole number of days from 1 to 30`},
		{"retention of zero days", validBody + "retention: {days: 0}\n", `retention.days: "0" is not allowed: want a whole number of days from 1 to 30`},
		{"retention of a fraction", validBody + "retention: {days: 1.5}\n", `retention.days: "1.5" is not allowed: want a whole number of days from 1 to 30`},
		{"retention as a string", validBody + "retention: {days: \"7\"}\n", `retention.days: "7" is not allowed`},
		{"retention negative", validBody + "retention: {days: -3}\n", `retention.days: "-3" is not allowed`},
		{"unknown field", validBody + "retension: {days: 3}\n", "unknown field retension at top level; did you mean retention?"},
		{"bad dataset name", strings.Replace(validBody, "name: ihv", "name: IHV-Driver", 1), "reports[0].name"},
		{"missing template", strings.Replace(validBody, "templates/t.json", "templates/none.json", 1), "reports[0].template_file"},
		{"bad sink", strings.Replace(validBody, "./lake", "ftp://x/y", 1), "sink.url: scheme \"ftp\""},
		{"interval below 12h", strings.Replace(validBody, "templates/t.json}", "templates/t.json, schedule: {interval_hours: 6}}", 1), "reports[0].schedule.interval_hours"},
		{"real API without secret", strings.Replace(validBody, "emulator: true", "url: https://example.invalid", 1), "HDC_CLIENT_SECRET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tc.body), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to mention %q", err, tc.want)
			}
		})
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, validBody), env(map[string]string{
		"HDC_API_URL": "http://127.0.0.1:1", "HDC_CLIENT_SECRET": "from-env", "HDC_SINK_URL": "file:///tmp/lake",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DevCenter.Emulator || cfg.DevCenter.BaseURL != "http://127.0.0.1:1" || cfg.Sink.URL != "file:///tmp/lake" || cfg.DevCenter.ClientSecret.Reveal() != "from-env" {
		t.Errorf("overrides not applied: %+v", cfg.DevCenter)
	}
}

func TestParseSinkURL(t *testing.T) {
	for in, want := range map[string]sinkTarget{
		"./lake":           {scheme: "file", path: "./lake"},
		"file:///var/lake": {scheme: "file", path: "/var/lake"},
		"s3://bucket/a/b/": {scheme: "s3", bucket: "bucket", prefix: "a/b"},
		"s3://bucket":      {scheme: "s3", bucket: "bucket"},
	} {
		got, err := parseSinkURL(in)
		if err != nil || got != want {
			t.Errorf("parseSinkURL(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "file://host/x", "s3:///nobucket", "http://x/y"} {
		if _, err := parseSinkURL(in); err == nil {
			t.Errorf("parseSinkURL(%q) accepted", in)
		}
	}
}

// TestRunUsageErrors: bad flags and configs exit 2 with a message.
func TestRunUsageErrors(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"nope"}, &out, &errOut, env(nil)); code != exitUsage {
		t.Errorf("unknown command exit %d", code)
	}
	if code := run(t.Context(), []string{"run", "--config", "/does/not/exist.yaml"}, &out, &errOut, env(nil)); code != exitUsage {
		t.Errorf("missing config exit %d", code)
	}
	if !strings.Contains(errOut.String(), "exist.yaml") {
		t.Errorf("stderr = %q", errOut.String())
	}
}

func TestWarnIfWritable(t *testing.T) {
	path := writeConfig(t, validBody)
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	warnIfWritable(log, path)
	if logs.Len() != 0 {
		t.Fatalf("warned about a 0600 file: %s", logs.String())
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	warnIfWritable(log, path)
	if !strings.Contains(logs.String(), "writable by group or others") {
		t.Errorf("no warning for a world-writable config: %q", logs.String())
	}
}

// TestStorageCommandsNeedNoDevCenterSecret: purge, status and ddl load a
// config for the real API without its client secret; run does not.
func TestStorageCommandsNeedNoDevCenterSecret(t *testing.T) {
	path := writeConfig(t, strings.Replace(validBody, "emulator: true", "url: https://example.invalid", 1))
	if _, err := LoadStorageConfig(path, env(nil)); err != nil {
		t.Fatalf("storage-only load: %v", err)
	}
	if _, err := LoadConfig(path, env(nil)); err == nil || !strings.Contains(err.Error(), "HDC_CLIENT_SECRET") {
		t.Fatalf("full load without a secret: %v", err)
	}
	cfg, err := LoadStorageConfig(writeConfig(t, validBody+"retention: {days: 7}\n"), env(nil))
	if err != nil || cfg.Pipeline.Retention.Days != 7 {
		t.Fatalf("days: %+v, %v", cfg, err)
	}
}

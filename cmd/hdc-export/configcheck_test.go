package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestConfigErrorsSpeakTheFilesTerms: unknown fields get the nearest known
// field and their path, type errors name the field and the kind wanted,
// and no message names a Go type.
func TestConfigErrorsSpeakTheFilesTerms(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"typo at top level", validBody + "retension: {days: 3}\n", "unknown field retension at top level; did you mean retention?"},
		{"typo nested", strings.Replace(validBody, "url: ./lake", "ulr: ./lake", 1), "unknown field ulr in sink; did you mean url?"},
		{"typo in a list item", strings.Replace(validBody, "template_file:", "templat_file:", 1), "unknown field templat_file in reports[0]; did you mean template_file?"},
		{"no near field", validBody + "zzzzzzzz: 1\n", "unknown field zzzzzzzz at top level"},
		{"bool", strings.Replace(validBody, "emulator: true", "emulator: maybe", 1), `devcenter.emulator: want true or false, got "maybe"`},
		{"int", validBody + "cabs: {concurrency: many}\n", `cabs.concurrency: want a whole number, got "many"`},
		{"duration", validBody + "lease: {ttl: soon}\n", `lease.ttl: want a duration such as 90s, 5m or 1h, got "soon"`},
		{"mapping wanted", validBody + "lease: 5m\n", `lease: want a mapping of fields, got "5m"`},
		{"list wanted", strings.Replace(validBody, "reports:\n  - {name: ihv, template_file: templates/t.json}", "reports: ihv", 1), `reports: want a list, got "ihv"`},
		{"custom unmarshaler", validBody + "retention: {days: 31}\n", `retention.days: "31" is not allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tc.body), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to mention %q", err, tc.want)
			}
			for _, leak := range []string{"main.", "pipeline.", "time.Duration", "!!str", "in type", "cannot unmarshal"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error names Go internals (%q): %v", leak, err)
				}
			}
		})
	}
}

// TestNearestField: suggestions are typos of a known field, or nothing.
func TestNearestField(t *testing.T) {
	fields := yamlFields(typeOfConfig())
	for in, want := range map[string]string{"retension": "retention", "reprots": "reports", "Sink": "sink", "lese": "lease", "colour": ""} {
		if got := nearest(in, fields); got != want {
			t.Errorf("nearest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEnvironmentValuesNameTheirVariable: a bad value from HDC_* is blamed
// on the variable, not the file.
func TestEnvironmentValuesNameTheirVariable(t *testing.T) {
	_, err := LoadConfig(writeConfig(t, validBody), env(map[string]string{"HDC_SINK_URL": "ftp://x/y"}))
	if err == nil || !strings.Contains(err.Error(), "sink.url (from HDC_SINK_URL): scheme \"ftp\"") {
		t.Fatalf("err = %v", err)
	}
	_, err = LoadConfig(writeConfig(t, validBody), env(map[string]string{"HDC_API_URL": "not a url", "HDC_CLIENT_SECRET": "s"}))
	if err == nil || !strings.Contains(err.Error(), "devcenter.url (from HDC_API_URL)") {
		t.Fatalf("err = %v", err)
	}
	// The same mistake in the file blames the file's field alone.
	_, err = LoadConfig(writeConfig(t, strings.Replace(validBody, "./lake", "ftp://x/y", 1)), env(nil))
	if err == nil || strings.Contains(err.Error(), "HDC_SINK_URL)") {
		t.Fatalf("err = %v", err)
	}
}

// TestHomeIsExpanded: "~" and "~/…", quoted or not, mean the home folder;
// "~user" is refused with a clear error.
func TestHomeIsExpanded(t *testing.T) {
	home := t.TempDir()
	vars := map[string]string{"HOME": home}
	for _, url := range []string{`~/lake`, `"~/lake"`, `'~/lake'`} {
		cfg, err := LoadConfig(writeConfig(t, strings.Replace(validBody, "./lake", url, 1)+"temp_dir: \"~/tmp\"\n"), env(vars))
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if cfg.Sink.URL != filepath.Join(home, "lake") || cfg.Pipeline.TempDir != filepath.Join(home, "tmp") {
			t.Errorf("%s: sink %q, temp %q", url, cfg.Sink.URL, cfg.Pipeline.TempDir)
		}
	}
	cfg, err := LoadConfig(writeConfig(t, validBody), env(map[string]string{"HOME": home, "HDC_SINK_URL": "~"}))
	if err != nil || cfg.Sink.URL != home {
		t.Errorf("HDC_SINK_URL=~: %q, %v", cfg.Sink.URL, err)
	}
	_, err = LoadConfig(writeConfig(t, strings.Replace(validBody, "./lake", `"~bob/lake"`, 1)), env(vars))
	if err == nil || !strings.Contains(err.Error(), `sink.url: "~bob/lake": ~user paths are not supported`) {
		t.Errorf("~user: %v", err)
	}
}

func typeOfConfig() reflect.Type { return reflect.TypeFor[Config]() }

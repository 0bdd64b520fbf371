package main

import (
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// TestCabsSwitch: HDC_CABS turns mirroring off or on over the file; a
// value that is neither is an error naming the variable.
func TestCabsSwitch(t *testing.T) {
	path := writeConfig(t, validBody)
	for _, tc := range []struct {
		env  string
		body string
		on   bool
	}{
		{"", validBody, true},
		{"off", validBody, false},
		{"OFF", validBody, false},
		{"false", validBody, false},
		{"on", validBody + "cabs: {enabled: false}\n", true},
		{"", validBody + "cabs: {enabled: false}\n", false},
	} {
		p := path
		if tc.body != validBody {
			p = writeConfig(t, tc.body)
		}
		cfg, err := LoadConfig(p, env(map[string]string{"HDC_CABS": tc.env}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Pipeline.Cabs.On() != tc.on {
			t.Errorf("HDC_CABS=%q over %q: on = %v", tc.env, tc.body[len(validBody):], cfg.Pipeline.Cabs.On())
		}
	}
	if _, err := LoadConfig(path, env(map[string]string{"HDC_CABS": "maybe"})); err == nil || !strings.Contains(err.Error(), "HDC_CABS") {
		t.Errorf("HDC_CABS=maybe: err = %v", err)
	}
	for _, bad := range []struct{ body, want string }{
		{"cabs: {concurrency: 500}\n", "cabs.concurrency"},
		{"cabs: {byte_budget: -1}\n", "cabs.byte_budget"},
		{"cabs: {rate_per_second: -2}\n", "cabs.rate_per_second"},
		{"cabs: {allow_hosts: [\".net\"]}\n", "cabs.allow_hosts[0]: \".net\": a suffix needs at least two labels"},
		{"cabs: {allow_hosts: []}\n", "cabs.allow_hosts"},
	} {
		if _, err := LoadConfig(writeConfig(t, validBody+bad.body), env(nil)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: err = %v, want it to name %s", bad.body, err, bad.want)
		}
	}
}

// TestEmbeddedEmulatorIsAllowed: with devcenter.emulator the emulator's
// own address joins the cab allowlist (plain http, its port only).
func TestEmbeddedEmulatorIsAllowed(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, validBody), env(map[string]string{"HDC_SINK_URL": "file://" + t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	env, err := setup(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer env.close()
	hosts := cfg.Pipeline.Cabs.AllowHosts
	if len(hosts) != 2 || hosts[0] != ".blob.core.windows.net" {
		t.Fatalf("allow_hosts = %q", hosts)
	}
	u, err := url.Parse(hosts[1])
	if err != nil || u.Scheme != "http" || !strings.HasPrefix(u.Host, "127.0.0.1:") {
		t.Errorf("emulator entry %q", hosts[1])
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hdc-export/hdc-export/devcenter"
	"github.com/hdc-export/hdc-export/pipeline"
	"github.com/hdc-export/hdc-export/sinks/s3"
)

// Config is the whole configuration file. Each part belongs to the package
// that uses it; this file only composes them.
type Config struct {
	DevCenter DevCenterConfig `yaml:"devcenter"`
	Sink      SinkConfig      `yaml:"sink"`
	Pipeline  pipeline.Config `yaml:",inline"`
	Lease     LeaseConfig     `yaml:"lease"`
	Serve     ServeConfig     `yaml:"serve"`
}

// LeaseConfig tunes the lake's lease (one cycle at a time per lake).
type LeaseConfig struct {
	// TTL is how long a lease lasts without renewal (renewed every TTL/3
	// while a cycle runs); a dead holder's lease is taken over after it.
	// Default 5m.
	TTL time.Duration `yaml:"ttl"`
}

// ServeConfig is the long-running service's schedule, in cron syntax
// (UTC; robfig/cron/v3, five fields or descriptors such as "@every 1h").
type ServeConfig struct {
	Cycle string `yaml:"cycle"` // export cycle; default "15 * * * *"
	Purge string `yaml:"purge"` // retention purge; default "45 */6 * * *"
}

// DevCenterConfig is the API connection, plus the switch for the embedded
// emulator used by the demo.
type DevCenterConfig struct {
	devcenter.Config `yaml:",inline"`
	// Emulator starts the in-process emulator's demo account and points the
	// client at it. Setting HDC_API_URL turns it off.
	Emulator bool `yaml:"emulator"`
}

// SinkConfig chooses where the lake is written.
type SinkConfig struct {
	// URL is file:///abs/path, a plain folder path (relative to the working
	// directory), or s3://bucket/prefix.
	URL string `yaml:"url"`
	// S3 tunes an s3:// sink (bucket and prefix come from URL). Credentials
	// come from the AWS SDK's standard chain, never from this file.
	S3 s3.Config `yaml:"s3"`
	// TableFormat is how the lake keeps its tables: "hive" (default,
	// plain files) or "iceberg" (a binary built with -tags iceberg).
	TableFormat string `yaml:"table_format"`
	// Iceberg places an Iceberg lake's catalog (see TableFormat).
	Iceberg IcebergConfig `yaml:"iceberg"`
}

// envOverrides are the variables an operator or container sets; they win
// over the file. field is the config field each sets, so that an error in
// its value names the variable (see attributeEnv).
var envOverrides = []struct {
	name, field string
	apply       func(c *Config, v string)
}{
	{"HDC_API_URL", "devcenter.url", func(c *Config, v string) { c.DevCenter.BaseURL, c.DevCenter.Emulator = v, false }},
	{"HDC_TOKEN_URL", "devcenter.token_url", func(c *Config, v string) { c.DevCenter.TokenURL = v }},
	{"HDC_TENANT_ID", "devcenter.tenant_id", func(c *Config, v string) { c.DevCenter.TenantID = v }},
	{"HDC_CLIENT_ID", "devcenter.client_id", func(c *Config, v string) { c.DevCenter.ClientID = v }},
	{"HDC_CLIENT_SECRET", "devcenter client secret", func(c *Config, v string) { c.DevCenter.ClientSecret = devcenter.Secret(v) }},
	{"HDC_SINK_URL", "sink.url", func(c *Config, v string) { c.Sink.URL = v }},
	{"HDC_S3_ENDPOINT", "sink.s3.endpoint", func(c *Config, v string) { c.Sink.S3.Endpoint, c.Sink.S3.PathStyle = v, true }},
	{"HDC_S3_REGION", "sink.s3.region", func(c *Config, v string) { c.Sink.S3.Region = v }},
}

// LoadConfig reads a config file: defaults, then strict YAML (an unknown
// field is an error), then template files, then the environment, then
// validation that reports every problem with its field path.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	return loadConfig(path, getenv, true)
}

// LoadStorageConfig is LoadConfig for commands that touch only the lake
// (purge, status, ddl): the Dev Center connection is not validated, so a
// storage-only job needs no Dev Center credentials.
func LoadStorageConfig(path string, getenv func(string) string) (*Config, error) {
	return loadConfig(path, getenv, false)
}

func loadConfig(path string, getenv func(string) string, needAPI bool) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := checkYAML(&doc, reflect.TypeFor[Config]()); err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	var errs []error
	home := homeDir(getenv)
	fromEnv := map[string]string{} // field → variable
	for _, o := range envOverrides {
		if v := getenv(o.name); v != "" {
			o.apply(cfg, v)
			fromEnv[o.field] = o.name
		}
	}
	if cfg.Sink.URL, err = expandHome(cfg.Sink.URL, home); err != nil {
		errs = append(errs, fmt.Errorf("sink.url: %w", err))
	}
	if cfg.Pipeline.TempDir, err = expandHome(cfg.Pipeline.TempDir, home); err != nil {
		errs = append(errs, fmt.Errorf("temp_dir: %w", err))
	}
	for i := range cfg.Pipeline.Reports {
		r := &cfg.Pipeline.Reports[i]
		if r.TemplateFile == "" {
			errs = append(errs, fmt.Errorf("reports[%d].template_file: required", i))
			continue
		}
		path, err := expandHome(r.TemplateFile, home)
		if err != nil {
			errs = append(errs, fmt.Errorf("reports[%d].template_file: %w", i, err))
			continue
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		if err := loadTemplate(path, &r.Template); err != nil {
			errs = append(errs, fmt.Errorf("reports[%d].template_file: %w", i, err))
		}
	}
	if v := getenv("HDC_CABS"); v != "" {
		switch on, ok := parseSwitch(v); {
		case ok:
			cfg.Pipeline.Cabs.Enabled = &on
		default:
			errs = append(errs, fmt.Errorf("HDC_CABS: %q is not on or off", v))
		}
	}
	cfg.Pipeline.SetDefaults()
	if cfg.Lease.TTL == 0 {
		cfg.Lease.TTL = 5 * time.Minute
	}
	if cfg.Serve.Cycle == "" {
		cfg.Serve.Cycle = "15 * * * *"
	}
	if cfg.Serve.Purge == "" {
		cfg.Serve.Purge = "45 */6 * * *"
	}
	cfg.Pipeline.RunnerID = runnerID()
	if cfg.DevCenter.Emulator && cfg.DevCenter.ClientSecret == "" {
		cfg.DevCenter.ClientSecret = demoSecret
	}
	if err := cfg.validate(needAPI); err != nil {
		errs = append(errs, err)
	}
	if err := attributeEnv(errors.Join(errs...), fromEnv); err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return cfg, nil
}

// attributeEnv rewords each error about a field whose value came from an
// HDC_* variable so that it names the variable: "sink.url (from
// HDC_SINK_URL): …". err may join many errors.
func attributeEnv(err error, fromEnv map[string]string) error {
	if err == nil || len(fromEnv) == 0 {
		return err
	}
	var leaves []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		msg := e.Error()
		for field, name := range fromEnv {
			if strings.HasPrefix(msg, field+":") || strings.HasPrefix(msg, field+" ") {
				e = fmt.Errorf("%s (from %s)%s", field, name, strings.TrimPrefix(msg, field))
				break
			}
		}
		leaves = append(leaves, e)
	}
	walk(err)
	return errors.Join(leaves...)
}

// homeDir is the user's home folder: HOME, else the system's idea of it.
func homeDir(getenv func(string) string) string {
	if h := getenv("HOME"); h != "" {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

// expandHome expands a leading "~" or "~/" of a path (YAML passes it on
// verbatim, quoted or not, and no shell expands it) to home. "~user" is
// an error: only the running user's home is known. URLs pass unchanged.
func expandHome(p, home string) (string, error) {
	if !strings.HasPrefix(p, "~") {
		return p, nil
	}
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return "", fmt.Errorf("%q: ~user paths are not supported; write the full path", p)
	}
	if home == "" {
		return "", fmt.Errorf("%q: the home folder is not known (HOME is unset); write the full path", p)
	}
	return filepath.Join(home, p[1:]), nil
}

// loadTemplate reads a JSON template definition strictly.
func loadTemplate(path string, def *devcenter.TemplateDef) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(def); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

// Validate checks the composed configuration.
func (c *Config) Validate() error { return c.validate(true) }

// validate checks the configuration, and the Dev Center connection only
// if needAPI.
func (c *Config) validate(needAPI bool) error {
	var errs []error
	if needAPI && !c.DevCenter.Emulator {
		dc := c.DevCenter.Config
		if dc.BaseURL == "" {
			errs = append(errs, errors.New("devcenter.url: required unless devcenter.emulator is true (or set HDC_API_URL)"))
		}
		if err := dc.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if t, err := parseSinkURL(c.Sink.URL); err != nil {
		errs = append(errs, fmt.Errorf("sink.url: %w", err))
	} else if t.scheme == "s3" {
		sc := c.Sink.s3Config(t)
		if err := sc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("sink.%w", err))
		}
	}
	if c.Lease.TTL < 30*time.Second {
		errs = append(errs, fmt.Errorf("lease.ttl: %s is too short (at least 30s)", c.Lease.TTL))
	}
	for _, s := range []struct{ name, spec string }{{"serve.cycle", c.Serve.Cycle}, {"serve.purge", c.Serve.Purge}} {
		if err := pipeline.ValidateSpec(s.spec); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	if err := c.Pipeline.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// s3Config is the S3 sink's configuration with the URL's bucket and prefix.
func (sc SinkConfig) s3Config(t sinkTarget) s3.Config {
	c := sc.S3
	c.Bucket, c.Prefix = t.bucket, t.prefix
	return c
}

// sinkTarget is a parsed sink URL.
type sinkTarget struct {
	scheme string // "file" or "s3"
	path   string // folder for file
	bucket string // for s3
	prefix string // for s3
}

// parseSinkURL accepts file:///abs/path, a plain path, and s3://bucket/prefix.
func parseSinkURL(raw string) (sinkTarget, error) {
	if raw == "" {
		return sinkTarget{}, errors.New("required (file:///path, a folder, or s3://bucket/prefix; or set HDC_SINK_URL)")
	}
	if !strings.Contains(raw, "://") {
		return sinkTarget{scheme: "file", path: raw}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return sinkTarget{}, fmt.Errorf("not a URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return sinkTarget{}, fmt.Errorf("file URL must be file:///absolute/path (host %q given)", u.Host)
		}
		if u.Path == "" {
			return sinkTarget{}, errors.New("file URL has no path")
		}
		return sinkTarget{scheme: "file", path: u.Path}, nil
	case "s3":
		if u.Host == "" {
			return sinkTarget{}, errors.New("s3 URL needs a bucket: s3://bucket/prefix")
		}
		return sinkTarget{scheme: "s3", bucket: u.Host, prefix: strings.Trim(u.Path, "/")}, nil
	}
	return sinkTarget{}, fmt.Errorf("scheme %q not supported (want file or s3)", u.Scheme)
}

// runnerID names this process in audit records: host and pid.
func runnerID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// parseSwitch reads an on/off environment value.
func parseSwitch(v string) (on, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "1", "yes":
		return true, true
	case "off", "false", "0", "no":
		return false, true
	}
	return false, false
}

// warnIfWritable warns when the config file can be changed by others: it
// decides where data goes and which hosts cabs may come from.
func warnIfWritable(log *slog.Logger, path string) {
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o022 != 0 {
		log.Warn("config file is writable by group or others; restrict it (chmod go-w)", "file", path, "mode", st.Mode().Perm().String())
	}
}

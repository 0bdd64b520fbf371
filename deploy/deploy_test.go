package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// programSource is the text of the command's Go files (tests excluded).
func programSource(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("../cmd/hdc-export/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no command sources: %v", err)
	}
	var b strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(src)
	}
	return b.String()
}

// exposed is every hdc_ metric name the program registers.
func exposed(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`\.(?:counter|gauge)\("(hdc_[a-z_]+)"`).FindAllStringSubmatch(programSource(t), -1) {
		names[m[1]] = true
	}
	if len(names) < 10 {
		t.Fatalf("found %d registered metrics in cmd/hdc-export", len(names))
	}
	return names
}

var metricName = regexp.MustCompile(`\b(hdc_[a-z_]+|go_[a-z_]+|process_[a-z_]+)\b`)

// checkNames fails for every hdc_ name in text that the program does not
// register.
func checkNames(t *testing.T, where, text string, names map[string]bool) int {
	t.Helper()
	n := 0
	for _, m := range metricName.FindAllString(text, -1) {
		if strings.HasPrefix(m, "hdc_") {
			n++
			if !names[m] {
				t.Errorf("%s uses %s, which hdc-export does not expose", where, m)
			}
		}
	}
	return n
}

type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestRulesUseExposedMetrics: every alert names only metrics the program
// exposes, has a severity and a summary, and the alerts the issue asks
// for exist.
func TestRulesUseExposedMetrics(t *testing.T) {
	names := exposed(t)
	b, err := os.ReadFile("prometheus/hdc-export.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf rulesFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if checkNames(t, r.Alert, r.Expr, names) == 0 {
				t.Errorf("%s uses no hdc_ metric: %s", r.Alert, r.Expr)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s lacks a severity or a summary", r.Alert)
			}
		}
	}
	for _, want := range []string{"HDCExportStale", "HDCRetentionCheckFailing", "HDCRetentionCheckStale", "HDCCabRefusals", "HDCExportPartialRun"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
	tests, err := os.ReadFile("prometheus/hdc-export.rules.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if !strings.Contains(string(tests), "alertname: "+a+"\n") {
			t.Errorf("promtool tests never evaluate %s", a)
		}
	}
}

// TestRulesPromtool runs promtool on the rules where it is installed
// (`make rules` runs it in CI; -short leaves it to that target).
func TestRulesPromtool(t *testing.T) {
	if testing.Short() {
		t.Skip("make rules runs promtool")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but promtool is not installed (apt-get install prometheus)")
		}
		t.Skip("promtool is not installed (apt-get install prometheus); CI runs it")
	}
	for _, args := range [][]string{{"check", "rules", "hdc-export.rules.yml"}, {"test", "rules", "hdc-export.rules.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestDashboard: the dashboard is JSON whose every panel queries metrics
// the program exposes.
func TestDashboard(t *testing.T) {
	names := exposed(t)
	b, err := os.ReadFile("grafana/hdc-export.dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.Panels) < 6 {
		t.Fatalf("dashboard uid %q with %d panels", d.UID, len(d.Panels))
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.Expr == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			checkNames(t, "panel "+p.Title, q.Expr, names)
		}
	}
}

// TestDockerfile: a multi-stage build of a static binary (CGO_ENABLED=0)
// whose last stage runs as a numeric non-root user, with CA certificates.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continued lines, drop comments.
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var stages [][]string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], line)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := strings.Join(stages[0], "\n"), stages[len(stages)-1]
	if !regexp.MustCompile(`RUN .*CGO_ENABLED=0 go build .*\./cmd/hdc-export`).MatchString(build) {
		t.Error("the build stage does not build ./cmd/hdc-export with CGO_ENABLED=0")
	}
	if !strings.Contains(build, "internal/version.version=") || !strings.Contains(build, "internal/version.revision=") {
		t.Error("the build does not stamp the version with the linker")
	}
	var user string
	var certs, entry bool
	for _, l := range final {
		switch f := strings.Fields(l); strings.ToUpper(f[0]) {
		case "USER":
			user = f[1]
		case "COPY":
			certs = certs || strings.Contains(l, "/etc/ssl/certs/ca-certificates.crt")
		case "ENTRYPOINT":
			entry = strings.Contains(l, "hdc-export")
		case "RUN":
			t.Errorf("the runtime stage runs %q (it has no shell)", l)
		}
	}
	if !regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`).MatchString(user) {
		t.Errorf("runtime USER %q, want a numeric non-root user (runAsNonRoot needs a number)", user)
	}
	if !certs || !entry {
		t.Errorf("runtime stage: CA certificates %v, hdc-export entrypoint %v", certs, entry)
	}
}

// container is a CronJob pod's container, as far as the checks read it.
type container struct {
	Args []string `yaml:"args"`
	Env  []struct {
		Name      string         `yaml:"name"`
		Value     *string        `yaml:"value"`
		ValueFrom map[string]any `yaml:"valueFrom"`
	} `yaml:"env"`
}

// cronJob is a Kubernetes CronJob, as far as the checks read it.
type cronJob struct {
	Kind string `yaml:"kind"`
	Spec struct {
		ConcurrencyPolicy string `yaml:"concurrencyPolicy"`
		JobTemplate       struct {
			Spec struct {
				PodFailurePolicy podFailurePolicy `yaml:"podFailurePolicy"`
				Template         struct {
					Spec struct {
						RestartPolicy   string `yaml:"restartPolicy"`
						SecurityContext struct {
							RunAsNonRoot bool `yaml:"runAsNonRoot"`
							RunAsUser    int  `yaml:"runAsUser"`
						} `yaml:"securityContext"`
						Containers []container `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

// TestCronJob: the CronJob forbids overlap, takes no exit code for
// success (exit 0 already means nothing failed), runs as the image's
// non-root user, takes secrets from a Secret only, and passes flags that
// `run` has.
func TestCronJob(t *testing.T) {
	b, err := os.ReadFile("k8s/cronjob.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cj cronJob
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(false)
	if err := dec.Decode(&cj); err != nil {
		t.Fatal(err)
	}
	if cj.Kind != "CronJob" || cj.Spec.ConcurrencyPolicy != "Forbid" {
		t.Errorf("kind %q, concurrencyPolicy %q", cj.Kind, cj.Spec.ConcurrencyPolicy)
	}
	cj.Spec.JobTemplate.Spec.PodFailurePolicy.check(t, "k8s/cronjob.yaml")
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	if pod.RestartPolicy != "Never" || !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("pod: restartPolicy %q, runAsNonRoot %v, runAsUser %d", pod.RestartPolicy, pod.SecurityContext.RunAsNonRoot, pod.SecurityContext.RunAsUser)
	}
	docker, _ := os.ReadFile("Dockerfile")
	if !strings.Contains(string(docker), "USER "+strconv.Itoa(pod.SecurityContext.RunAsUser)+":") {
		t.Errorf("runAsUser %d is not the image's USER", pod.SecurityContext.RunAsUser)
	}
	if len(pod.Containers) != 1 || len(pod.Containers[0].Args) == 0 || pod.Containers[0].Args[0] != "run" {
		t.Fatalf("containers %+v", pod.Containers)
	}
	src := programSource(t)
	for _, a := range pod.Containers[0].Args[1:] {
		if name, ok := strings.CutPrefix(a, "--"); ok && !strings.Contains(src, `("`+name+`",`) {
			t.Errorf("flag %s is not a flag of hdc-export", a)
		}
	}
	secret := regexp.MustCompile(`SECRET|KEY|PASSWORD|TOKEN`)
	for _, e := range pod.Containers[0].Env {
		if secret.MatchString(e.Name) && (e.Value != nil || e.ValueFrom["secretKeyRef"] == nil) {
			t.Errorf("%s does not come from a Secret", e.Name)
		}
	}
}

// exitUsage is hdc-export's exit code for bad flags or config.
const exitUsage = 2

// podFailurePolicy is a Job's podFailurePolicy, as far as the checks read it.
type podFailurePolicy struct {
	Rules []struct {
		Action      string `yaml:"action"`
		OnExitCodes *struct {
			Operator string `yaml:"operator"`
			Values   []int  `yaml:"values"`
		} `yaml:"onExitCodes"`
	} `yaml:"rules"`
}

// check fails t unless the policy, if it has rules, ignores no exit code
// (exit 0 already covers nothing new and a lease held; ignoring a code
// makes Kubernetes start a replacement pod), matches exit codes with In and
// never 0, and fails the Job on exitUsage in every FailJob rule, of which
// there is one at least.
func (p podFailurePolicy) check(t *testing.T, what string) {
	t.Helper()
	failsOnUsage := false
	for _, r := range p.Rules {
		switch {
		case r.OnExitCodes == nil:
			continue // a pod condition (DisruptionTarget), not an exit
		case r.OnExitCodes.Operator != "In" || slices.Contains(r.OnExitCodes.Values, 0):
			t.Errorf("%s: rule %s on exit codes %s %v: want In, never 0", what, r.Action, r.OnExitCodes.Operator, r.OnExitCodes.Values)
		case r.Action == "Ignore":
			t.Errorf("%s: a podFailurePolicy Ignore rule on exit codes makes Kubernetes start a replacement pod after each such exit", what)
		case r.Action == "FailJob" && !slices.Contains(r.OnExitCodes.Values, exitUsage):
			t.Errorf("%s: FailJob without exit %d (bad flags or config)", what, exitUsage)
		case r.Action == "FailJob":
			failsOnUsage = true
		}
	}
	if len(p.Rules) > 0 && !failsOnUsage {
		t.Errorf("%s: podFailurePolicy does not fail the Job on exit %d (bad flags or config), which no retry can heal", what, exitUsage)
	}
}

// TestReadmeCronJobs: the README's Kubernetes CronJobs parse, run their
// pods with restartPolicy Never (podFailurePolicy requires it), and their
// podFailurePolicy passes the same check as the manifest's.
func TestReadmeCronJobs(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		if !strings.Contains(block[1], "kind: CronJob") {
			continue
		}
		n++
		var cj cronJob
		if err := yaml.Unmarshal([]byte(block[1]), &cj); err != nil {
			t.Fatalf("CronJob %d: %v", n, err)
		}
		js := cj.Spec.JobTemplate.Spec
		if js.Template.Spec.RestartPolicy != "Never" {
			t.Errorf("CronJob %d: restartPolicy %q", n, js.Template.Spec.RestartPolicy)
		}
		js.PodFailurePolicy.check(t, "README CronJob "+strconv.Itoa(n))
	}
	if n != 2 {
		t.Errorf("found %d CronJobs in the README, want 2 (run and purge)", n)
	}
}

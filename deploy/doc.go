// Package deploy holds no code: it is the deployment kit (Dockerfile,
// Kubernetes CronJob, Prometheus alert rules and their promtool tests, a
// Grafana dashboard) and the tests that lint it against the program.
package deploy

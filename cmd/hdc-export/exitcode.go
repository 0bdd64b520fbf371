package main

// schedulerCode is the exit code a scheduler sees for a classified outcome
// (see exitCode). Another runner holding the lease and nothing new are not
// failures, so they exit 0, and a scheduler needs no exception for them
// (a Kubernetes Job counts them as success, systemd and Airflow too). With
// detailed (--detailed-exitcode) they keep their own codes, 4 and 5, for
// callers that act on them.
func schedulerCode(code int, detailed bool) int {
	if !detailed && (code == exitLeaseHeld || code == exitNothingNew) {
		return exitOK
	}
	return code
}

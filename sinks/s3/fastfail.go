package s3

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/hdc-export/hdc-export/sinks"
)

// DefaultRefusedRetryFor is Config.RefusedRetryFor's default.
const DefaultRefusedRetryFor = 10 * time.Second

// refusedWait is the wait before retry n (from 1) of a refused
// connection: 250 ms doubling to at most 1 s, without jitter, so that the
// bound RefusedRetryFor holds to the second.
func refusedWait(n int) time.Duration {
	return min(250*time.Millisecond<<min(max(n, 1)-1, 4), time.Second)
}

// refusedRetryer is the SDK retryer with one change: a request whose
// connection was refused (nothing listens at the endpoint: a wrong port
// or host, or a store that is down) is retried with short waits adding
// up to at most budget, then fails; other failures keep the wrapped
// retryer's backoff. Without it, the standard backoff (up to 20 s a try,
// 9 tries) makes a wrong port look like a hang for a minute and a half.
// It also never retries ErrNoCredentials, which no retry cures.
type refusedRetryer struct {
	aws.RetryerV2
	budget time.Duration
}

func (r refusedRetryer) IsErrorRetryable(err error) bool {
	if errors.Is(err, ErrNoCredentials) {
		return false
	}
	return r.RetryerV2.IsErrorRetryable(err)
}

// RetryDelay is the SDK's hook to stop retrying: an error ends the request.
// attempt counts failed tries from 1 (older SDKs count from 0, which only
// shifts the bound by one wait).
func (r refusedRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return r.RetryerV2.RetryDelay(attempt, err)
	}
	spent := time.Duration(0)
	for n := 1; n < attempt; n++ {
		spent += refusedWait(n)
	}
	if spent+refusedWait(attempt) > r.budget {
		return 0, fmt.Errorf("connection refused; retried for up to %v (s3.refused_retry_for): check the endpoint's host and port: %w", r.budget, err)
	}
	return refusedWait(attempt), nil
}

// ErrNoCredentials means the SDK's credential chain found no AWS
// credentials. It also wraps sinks.ErrPermanent.
var ErrNoCredentials = errors.New("no AWS credentials")

// credentialVars are the environment variables that configure a source of
// the SDK's default credential chain other than the instance role.
var credentialVars = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"}

// credentialsHint wraps the credential chain so that its failure says
// how to provide credentials. When nothing in the environment named a
// source, the chain ends at the instance metadata service (IMDS), whose
// own error ("no EC2 IMDS role found…") says nothing useful off EC2: the
// hint replaces it. When a source was named, its error follows the hint.
type credentialsHint struct{ aws.CredentialsProvider }

func (p credentialsHint) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.CredentialsProvider.Retrieve(ctx)
	if err == nil {
		return c, nil
	}
	named := false
	for _, v := range credentialVars {
		if os.Getenv(v) != "" {
			named = true
		}
	}
	return c, &credentialsError{cause: err, named: named}
}

type credentialsError struct {
	cause error
	named bool // the environment named a source; its error is shown
}

const credentialsHelp = "s3: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY " +
	"(and AWS_SESSION_TOKEN for temporary keys), or AWS_PROFILE to use a profile of the shared config and credentials files, " +
	"or run with a role: an EC2 instance profile, an ECS task role, or IRSA web identity on EKS (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)"

func (e *credentialsError) Error() string {
	if e.named {
		return credentialsHelp + "; the configured source failed: " + e.cause.Error()
	}
	return credentialsHelp + " (none is configured here, and no instance role answered)"
}

func (e *credentialsError) Unwrap() []error {
	return []error{ErrNoCredentials, sinks.ErrPermanent, e.cause}
}

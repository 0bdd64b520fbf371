package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/hdc-export/hdc-export/sinks"
)

// apiErr builds an error shaped like the SDK's: an API error code inside an
// HTTP response error.
func apiErr(status int, code string) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: "test"},
		},
		RequestID: "req-1",
	}
}

func TestMapErr(t *testing.T) {
	none := error(nil)
	for _, c := range []struct {
		op   string
		err  error
		want []error // sentinels err must match
		not  []error // sentinels it must not match
	}{
		{opGet, apiErr(404, "NoSuchKey"), []error{sinks.ErrNotFound}, []error{sinks.ErrPermanent}},
		{opStat, apiErr(404, "NotFound"), []error{sinks.ErrNotFound}, nil},
		{opStat, apiErr(404, ""), []error{sinks.ErrNotFound}, nil},
		{opPut, apiErr(404, "NoSuchBucket"), []error{sinks.ErrPermanent}, []error{sinks.ErrNotFound}},
		{opPut, apiErr(403, "AccessDenied"), []error{sinks.ErrPermanent}, nil},
		{opStat, apiErr(403, "Forbidden"), []error{sinks.ErrPermanent}, nil},
		{opList, apiErr(403, "InvalidAccessKeyId"), []error{sinks.ErrPermanent}, nil},
		{opList, apiErr(403, "SignatureDoesNotMatch"), []error{sinks.ErrPermanent}, nil},
		{opPut, apiErr(301, "PermanentRedirect"), []error{sinks.ErrPermanent}, nil},
		{opPutIfAbsent, apiErr(412, "PreconditionFailed"), []error{sinks.ErrExists}, []error{sinks.ErrPermanent}},
		{opPutIfAbsent, apiErr(409, "ConditionalRequestConflict"), []error{sinks.ErrExists}, nil},
		{opPut, apiErr(409, "OperationAborted"), nil, []error{sinks.ErrExists, sinks.ErrPermanent}},
		{opPutIfAbsent, apiErr(501, "NotImplemented"), []error{ErrNoConditionalWrites, sinks.ErrPermanent}, nil},
		{opLifecycle, apiErr(501, "NotImplemented"), []error{sinks.ErrPermanent}, []error{ErrNoConditionalWrites}},
		{opPut, apiErr(400, "KeyTooLongError"), []error{sinks.ErrInvalidKey}, nil},
		{opPut, apiErr(503, "SlowDown"), nil, []error{sinks.ErrPermanent, sinks.ErrNotFound}},
		{opPut, apiErr(500, "InternalError"), nil, []error{sinks.ErrPermanent}},
		{opGet, fmt.Errorf("op: %w", context.Canceled), []error{context.Canceled}, []error{sinks.ErrPermanent, sinks.ErrNotFound}},
		{opDelete, &objectError{code: "AccessDenied", message: "no"}, []error{sinks.ErrPermanent}, nil},
		{opDelete, &objectError{code: "InternalError", message: "later"}, nil, []error{sinks.ErrPermanent}},
	} {
		got := mapErr(c.op, "a/b", c.err)
		for _, w := range c.want {
			if !errors.Is(got, w) {
				t.Errorf("mapErr(%s, %v) = %v, want it to match %v", c.op, c.err, got, w)
			}
		}
		for _, n := range c.not {
			if errors.Is(got, n) {
				t.Errorf("mapErr(%s, %v) = %v, must not match %v", c.op, c.err, got, n)
			}
		}
		if !errors.Is(got, c.err) {
			t.Errorf("mapErr(%s, %v) lost the cause", c.op, c.err)
		}
		if !strings.HasPrefix(got.Error(), "s3 "+c.op+` "a/b": `) {
			t.Errorf("mapErr(%s) = %q, want the operation and key first", c.op, got)
		}
	}
	if mapErr(opGet, "k", none) != nil {
		t.Error("mapErr(nil) != nil")
	}
}

package objstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

// s3Error is a failed S3 operation. errors.Is matches both its sentinel
// (kind) and anything in the SDK's error chain.
type s3Error struct {
	op, key, bucket string
	kind            error  // ErrNotFound, ErrTransient, ErrPermanent, or nil
	hint            string // what it means for the operator, may be empty
	err             error  // the SDK's error
}

func (e *s3Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "objstore: s3 %s", e.op)
	if e.key != "" {
		fmt.Fprintf(&b, " %q", e.key)
	}
	fmt.Fprintf(&b, " in bucket %q: ", e.bucket)
	if e.hint != "" {
		b.WriteString(e.hint)
		b.WriteString(": ")
	}
	b.WriteString(e.err.Error())
	return b.String()
}

func (e *s3Error) Unwrap() []error {
	if e.kind == nil {
		return []error{e.err}
	}
	return []error{e.kind, e.err}
}

// Error codes that mean the credentials are wrong or lack permission.
var authCodes = map[string]bool{
	"AccessDenied":          true,
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"InvalidToken":          true,
	"ExpiredToken":          true,
	"TokenRefreshRequired":  true,
	"AllAccessDisabled":     true,
	"AccountProblem":        true,
	// versitygw answers an unknown access key with 404 XAdminUserNotFound.
	"XAdminUserNotFound": true,
}

// Error codes worth retrying whatever their HTTP status (S3's
// RequestTimeout comes with a 400).
var transientCodes = map[string]bool{
	"RequestTimeout":          true,
	"RequestTimeoutException": true,
	"SlowDown":                true,
	"Throttling":              true,
	"ThrottlingException":     true,
	"RequestThrottled":        true,
	"InternalError":           true,
	"ServiceUnavailable":      true,
}

// fail turns an SDK error into an *s3Error, or returns nil for nil.
func (s *S3) fail(op, key string, err error) error {
	if err == nil {
		return nil
	}
	e := &s3Error{op: op, key: key, bucket: s.bucket, err: err}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return e // the caller gave up; not the store's verdict
	}
	e.kind, e.hint = classify(err)
	return e
}

// classify says which sentinel err amounts to, and why in words.
func classify(err error) (kind error, hint string) {
	code, status := "", 0
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	var respErr interface{ HTTPStatusCode() int }
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	what := describe(code, status)
	switch {
	case code == "NoSuchBucket":
		return ErrPermanent, "permanent: bucket does not exist (NoSuchBucket)"
	case authCodes[code] || status == 401 || status == 403:
		return ErrPermanent, fmt.Sprintf("permanent: access denied: check credentials (access key, secret key) and bucket permissions (%s)", what)
	case code == "NoSuchKey" || code == "NotFound" || (status == 404 && code == ""):
		// HEAD answers have no body, hence no code.
		return ErrNotFound, "not found"
	case transientCodes[code] || status == 408 || status == 429 || status >= 500:
		return ErrTransient, fmt.Sprintf("transient: server busy or failing%s (%s)", attempts(err), what)
	case status >= 400:
		return ErrPermanent, fmt.Sprintf("permanent: request rejected (%s)", what)
	}
	var signErr *v4.SigningError
	if errors.As(err, &signErr) {
		return ErrPermanent, "permanent: no usable credentials: set an access key and secret key, or configure the AWS credential chain"
	}
	// No answer from the server: connection refused or reset, DNS, timeouts.
	return ErrTransient, "transient: network error" + attempts(err)
}

func describe(code string, status int) string {
	switch {
	case code != "" && status != 0:
		return fmt.Sprintf("%s, HTTP %d", code, status)
	case code != "":
		return code
	case status != 0:
		return fmt.Sprintf("HTTP %d", status)
	}
	return "no answer"
}

// attempts says how often the SDK tried, when it gave up for that reason.
func attempts(err error) string {
	var maxErr *retry.MaxAttemptsError
	if errors.As(err, &maxErr) {
		return fmt.Sprintf(", gave up after %d attempts", maxErr.Attempt)
	}
	return ""
}

// isInvalidRange reports a 416 answer to a ranged GET.
func isInvalidRange(err error) bool {
	var e *s3Error
	if !errors.As(err, &e) {
		return false
	}
	var apiErr smithy.APIError
	if errors.As(e.err, &apiErr) && apiErr.ErrorCode() == "InvalidRange" {
		return true
	}
	var respErr interface{ HTTPStatusCode() int }
	return errors.As(e.err, &respErr) && respErr.HTTPStatusCode() == 416
}

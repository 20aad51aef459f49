package cloudrun

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pushpool/pushpool/dispatch"
)

// call names one Cloud Run API call: what it does, for messages, and the
// IAM permission it needs.
type call struct{ verb, permission string }

var (
	callCreateJob       = call{"create job", "run.jobs.create"}
	callGetJob          = call{"read job", "run.jobs.get"}
	callListExecutions  = call{"list the executions of job", "run.executions.list"}
	callGetExecution    = call{"read execution", "run.executions.get"}
	callCancelExecution = call{"cancel execution", "run.executions.cancel"}
	callDeleteJob       = call{"delete job", "run.jobs.delete"}
	callListJobs        = call{"list jobs", "run.jobs.list"}
)

// kind is how pushpool treats a Cloud Run error.
type kind int

const (
	kindOther      kind = iota
	kindTransient       // Unavailable, Internal, Aborted, DeadlineExceeded: retry
	kindThrottled       // ResourceExhausted by a rate limit: retry with backoff
	kindQuota           // ResourceExhausted by an allocation quota: retry later
	kindPermission      // PermissionDenied, Unauthenticated
	kindNotFound
	kindExists
	kindInvalid // InvalidArgument, FailedPrecondition: the request is wrong
	kindContext // our own context ended
)

func classify(err error) kind {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return kindContext
	}
	st, ok := status.FromError(err)
	if !ok {
		return kindOther
	}
	switch st.Code() {
	case codes.Unavailable, codes.Internal, codes.Aborted, codes.DeadlineExceeded:
		return kindTransient
	case codes.Canceled:
		return kindContext
	case codes.ResourceExhausted:
		for _, d := range st.Details() {
			if _, ok := d.(*errdetails.QuotaFailure); ok {
				return kindQuota
			}
		}
		return kindThrottled
	case codes.PermissionDenied, codes.Unauthenticated:
		return kindPermission
	case codes.NotFound:
		return kindNotFound
	case codes.AlreadyExists:
		return kindExists
	case codes.InvalidArgument, codes.FailedPrecondition:
		return kindInvalid
	}
	return kindOther
}

// retried reports whether a call failing with k is tried again at once
// (with backoff). Quota is not: it frees up in minutes, not seconds.
func (k kind) retried() bool { return k == kindTransient || k == kindThrottled }

// permissionOf is the permission an IAM error names in its ErrorInfo, or
// the call's own.
func permissionOf(err error, c call) string {
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetMetadata()["permission"] != "" {
				return info.GetMetadata()["permission"]
			}
		}
	}
	return c.permission
}

// quotaOf describes the quota a QuotaFailure names.
func quotaOf(err error) string {
	var parts []string
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if q, ok := d.(*errdetails.QuotaFailure); ok {
				for _, v := range q.GetViolations() {
					parts = append(parts, strings.TrimSpace(v.GetQuotaId()+" "+v.GetDescription()))
				}
			}
		}
	}
	if len(parts) == 0 {
		return "quota not named"
	}
	return strings.Join(parts, "; ")
}

// fieldOf is the first field a BadRequest names.
func fieldOf(err error) string {
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if b, ok := d.(*errdetails.BadRequest); ok && len(b.GetFieldViolations()) > 0 {
				return b.GetFieldViolations()[0].GetField()
			}
		}
	}
	return ""
}

// target is what an error is about.
type target struct {
	flowRunID, project, region, job, execution, image, identity string
}

func (t target) prefix(c call) string {
	if t.flowRunID != "" {
		return fmt.Sprintf("cloud run: flow run %s: %s %s in project %s region %s", t.flowRunID, c.verb, t.name(), t.project, t.region)
	}
	return fmt.Sprintf("cloud run: %s %s in project %s region %s", c.verb, t.name(), t.project, t.region)
}

func (t target) name() string {
	if t.execution != "" {
		return t.execution
	}
	return t.job
}

// explain turns a Cloud Run error into pushpool's: wrapped, naming the flow
// run, the job, the project and region and the fix, and wrapping
// dispatch.ErrRetryable when a later attempt may succeed.
func explain(t target, c call, err error, attempts int) error {
	p := t.prefix(c)
	switch classify(err) {
	case kindPermission:
		return fmt.Errorf("%s: the caller (%s) lacks the IAM permission %s; grant it (roles/run.developer includes the run.jobs.* and run.executions.* permissions; running the job as another service account also needs iam.serviceAccounts.actAs on it): %w",
			p, t.identity, permissionOf(err, c), err)
	case kindThrottled:
		return fmt.Errorf("%s: Cloud Run is throttling requests (still after %d attempts with backoff); the call will be retried later: %w: %w",
			p, attempts, dispatch.ErrRetryable, err)
	case kindQuota:
		return fmt.Errorf("%s: a Cloud Run quota is exhausted (%s); the call will be retried later: delete finished jobs (Cloud Run allows 1000 jobs per region; pushpool's sweep deletes its own) or ask for more quota: %w: %w",
			p, quotaOf(err), dispatch.ErrRetryable, err)
	case kindTransient:
		return fmt.Errorf("%s: Cloud Run is unavailable (after %d attempts); the call will be retried later: %w: %w", p, attempts, dispatch.ErrRetryable, err)
	case kindContext:
		return fmt.Errorf("%s: gave up when the time for the call ran out; the call will be retried later: %w: %w", p, dispatch.ErrRetryable, err)
	case kindNotFound:
		if c == callCreateJob {
			return fmt.Errorf("%s: Cloud Run finds no location %s in project %s; check the region job variable and the project of the credentials block (or the dispatcher's project), and that the Cloud Run Admin API is enabled: %w",
				p, t.region, t.project, err)
		}
	case kindInvalid:
		if c == callCreateJob {
			field := fieldOf(err)
			if field == "" || strings.Contains(field, "image") {
				return fmt.Errorf("%s: Cloud Run rejected the job, most likely its image %q: check that the image exists and that Cloud Run's service agent may pull it (or fix the image job variable): %w", p, t.image, err)
			}
			return fmt.Errorf("%s: Cloud Run rejected the job's field %s (fix it in the job variables or the pool's base job template; image %q): %w", p, field, t.image, err)
		}
	}
	return fmt.Errorf("%s: %w", p, err)
}

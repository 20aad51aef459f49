package ecs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/pushpool/pushpool/dispatch"
)

// throttleCodes are the AWS error codes of rate limiting.
var throttleCodes = map[string]bool{
	"ThrottlingException": true, "Throttling": true, "TooManyRequestsException": true,
	"RequestLimitExceeded": true, "RequestThrottled": true, "RequestThrottledException": true,
	"ProvisionedThroughputExceededException": true, "SlowDown": true,
}

// retryable wraps err so that it matches dispatch.ErrRetryable too.
func retryable(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{dispatch.ErrRetryable}, args...)...)
}

// apiCall names an AWS call for error messages: its IAM action (ecs:RunTask)
// and the object it acted on (cluster "x", task definition family "y").
type apiCall struct {
	action  string
	object  string
	cluster string // the cluster involved, if any
}

// classify turns an AWS error of call for flow run flowRunID into pushpool's
// taxonomy: throttling, server faults, limits and transport failures wrap
// dispatch.ErrRetryable; access denied, missing clusters and invalid
// parameters are permanent and say what to fix.
func classify(err error, flowRunID string, call apiCall) error {
	var api smithy.APIError
	if !errors.As(err, &api) {
		if errors.Is(err, dispatch.ErrRetryable) {
			return err
		}
		return retryable("%s%s on %s got no answer from AWS; it will be retried: %w", runPrefix(flowRunID), call.action, call.object, err)
	}
	code, msg := api.ErrorCode(), api.ErrorMessage()
	switch {
	case throttleCodes[code]:
		return retryable("%sAWS throttled %s on %s (%s) even after the client's retries with backoff; the run goes back to the queue: %w", runPrefix(flowRunID), call.action, call.object, code, err)
	case code == "AccessDeniedException" || code == "AccessDenied" || code == "UnauthorizedOperation" || code == "UnauthorizedException":
		action := call.action
		if strings.Contains(msg, "iam:PassRole") {
			action = "iam:PassRole"
		}
		return fmt.Errorf("%sthe dispatcher's AWS identity is not allowed %s on %s (%s: %s); grant %s to it (for RunTask also iam:PassRole on the task and execution roles): %w", runPrefix(flowRunID), action, call.object, code, msg, action, err)
	case code == "ClusterNotFoundException":
		cluster := orDefault(call.cluster)
		return fmt.Errorf("%sECS cluster %s not found in this account and region (%s from %s); create cluster %s or set the cluster job variable to an existing cluster: %w", runPrefix(flowRunID), cluster, code, call.action, cluster, err)
	case code == "ClientException" && strings.Contains(strings.ToLower(msg), "too many concurrent attempts"):
		return retryable("%s%s on %s: ECS refused a concurrent revision (%s); it will be retried: %w", runPrefix(flowRunID), call.action, call.object, msg, err)
	case code == "LimitExceededException" || code == "ServiceQuotaExceededException":
		return retryable("%s%s on %s hit an AWS limit (%s: %s); it will be retried when capacity frees up, or raise the quota: %w", runPrefix(flowRunID), call.action, call.object, code, msg, err)
	case api.ErrorFault() == smithy.FaultServer || code == "ServerException" || code == "InternalFailure" || code == "ServiceUnavailable":
		return retryable("%sAWS failed %s on %s (%s); it will be retried: %w", runPrefix(flowRunID), call.action, call.object, code, err)
	case code == "InvalidParameterException" || code == "ClientException":
		return fmt.Errorf("%sECS rejected %s on %s (%s: %s); fix the work pool's base job template or the deployment's job variables: %w", runPrefix(flowRunID), call.action, call.object, code, msg, err)
	}
	return fmt.Errorf("%s%s on %s failed (%s: %s): %w", runPrefix(flowRunID), call.action, call.object, code, msg, err)
}

// runPrefix is "flow run <id>: ", or "" for calls made for no run.
func runPrefix(flowRunID string) string {
	if flowRunID == "" {
		return ""
	}
	return "flow run " + flowRunID + ": "
}

// runTaskFailure classifies a failures[] entry of a RunTask response:
// placement, capacity and concurrency limits are retryable (capacity frees
// up as other tasks end); anything else is permanent.
func runTaskFailure(flowRunID, cluster, reason, detail string) error {
	full := reason
	if detail != "" {
		full += " (" + detail + ")"
	}
	lower := strings.ToLower(reason)
	for _, word := range []string{"resource:", "capacity", "limit", "agent", "throttl", "quota", "unavailable"} {
		if strings.Contains(lower, word) {
			return retryable("flow run %s: ECS could not place the task in cluster %s: %s; capacity or a quota is exhausted, the run goes back to the queue (raise the quota or add capacity if it persists)", flowRunID, cluster, full)
		}
	}
	return fmt.Errorf("flow run %s: ECS refused to run the task in cluster %s: %s; fix the cluster or the job configuration", flowRunID, cluster, full)
}

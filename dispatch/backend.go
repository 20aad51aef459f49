// Package dispatch is pushpool's engine. A Dispatcher makes one pass over a
// work pool: it finds the flow runs that are due, claims each through
// Prefect's state orchestration (the lock between concurrent dispatchers),
// renders its job from the pool's base job template exactly as a Prefect
// worker would, starts it through a Backend and records what it started.
// The package imports no cloud SDK: backends live in dispatch/backend/*.
package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// Backend starts and observes the infrastructure of flow runs on one kind of
// compute. Implementations live in dispatch/backend/<target>; the entry point
// chooses one by the pool's type.
//
// The contract is per attempt (see Attempt): a flow run is started once per
// claim, and a run that is run again (Retry, resume, reschedule) is a new
// attempt that gets new infrastructure.
//
//   - Start is find-or-start for job.Attempt. Infrastructure that an earlier
//     attempt of the same flow run started never counts as this attempt's.
//     Calls for the same attempt, one after another or at the same time, in
//     one process or in several, start at most one piece of infrastructure and
//     all return its id (ECS: the attempt's clientToken; Cloud Run: the
//     attempt's job name, created with its execution; ACI: the attempt's group
//     name; process: an exclusive, crash-safe marker).
//   - Find reports the infrastructure started for job.Attempt without
//     starting anything: found is false when the attempt started none (yet).
//     The engine calls it before it gives an attempt up (requeue, recovery of
//     an abandoned claim), so that infrastructure that did start is recorded
//     instead of started twice.
//   - Status and Stop take the recorded infrastructure_pid only.
//   - Errors that a retry may cure wrap ErrRetryable; ErrForeign marks
//     infrastructure this backend cannot observe from where it runs.
type Backend interface {
	// Start starts job.Attempt's infrastructure, or finds what an earlier
	// call for the same attempt started, and returns its id in the format
	// Prefect's worker of the same type records as infrastructure_pid.
	Start(ctx context.Context, job Job) (string, error)
	// Find returns the id of the infrastructure started for job.Attempt;
	// found is false when there is none. job is rendered as for Start,
	// since the configuration says where to look (cluster, project, region,
	// resource group).
	Find(ctx context.Context, job Job) (id string, found bool, err error)
	// Status reports what the infrastructure is doing, and which attempt it
	// was started for when the platform still says (Status.Attempt).
	// Infrastructure that no longer exists is StateNotFound, not an error.
	Status(ctx context.Context, infrastructureID string) (Status, error)
	// Stop stops the infrastructure. Infrastructure that does not exist (any
	// more) counts as stopped: Stop returns nil.
	Stop(ctx context.Context, infrastructureID string) error
}

// Attempt is one claim of a flow run: the flow run and the PENDING state
// through which a dispatcher won it. Prefect's orchestration gives each claim
// a new state, so every start of a run — the first, a Retry from the UI, a
// resume after suspend_flow_run, a reschedule — is a distinct attempt, and
// every dispatcher that reads the run's state history agrees on it.
type Attempt struct {
	// FlowRunID is the flow run.
	FlowRunID string
	// ClaimID is the id of the accepted PENDING state (named "Pending") that
	// claimed the run: the first such state after the run's last SCHEDULED
	// state.
	ClaimID string
}

// KeyLen is the length of Attempt.Key.
const KeyLen = 8

// Key is a short name for the attempt, unique among the attempts of its
// flow run: KeyLen lower-case hex digits of a hash of the flow run and claim
// ids. Backends put it in names and tags ([a-z0-9] fits every platform's
// naming rules).
func (a Attempt) Key() string {
	sum := sha256.Sum256([]byte(a.FlowRunID + "/" + a.ClaimID))
	return hex.EncodeToString(sum[:])[:KeyLen]
}

// Token is the attempt's idempotency token, "<flow run id>-<key>" (at most
// 45 characters for Prefect's UUIDs): ECS's clientToken and startedBy, and
// the value of the attempt label or tag on infrastructure.
func (a Attempt) Token() string { return a.FlowRunID + "-" + a.Key() }

// IsZero reports whether the attempt is unset.
func (a Attempt) IsZero() bool { return a.ClaimID == "" }

// ParseToken splits a Token into its flow run id and key; ok is false when
// token is not one (infrastructure started by something else than pushpool,
// or by a version before attempts).
func ParseToken(token string) (flowRunID, key string, ok bool) {
	i := len(token) - KeyLen - 1
	if i < 1 || token[i] != '-' {
		return "", "", false
	}
	key = token[i+1:]
	for _, c := range key {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", "", false
		}
	}
	return token[:i], key, true
}

// Labels on flow runs and infrastructure that name the attempt.
const (
	// LabelAttempt carries the attempt's Token on the infrastructure
	// (sanitised as each platform requires) and the attempt's Key in the
	// job's environment as EnvAttempt.
	LabelAttempt = "pushpool.io/attempt"
	// EnvAttempt is the job environment variable holding the attempt's
	// Token, so that a flow (and the process backend's Find) can tell its
	// attempt.
	EnvAttempt = "PUSHPOOL_ATTEMPT"
)

// Job is what a backend is asked to start for one attempt of a flow run.
type Job struct {
	// FlowRunID identifies the run.
	FlowRunID string
	// Attempt is the claim this job is started for; backends derive
	// idempotency keys and names from it.
	Attempt Attempt
	// FlowRunName and FlowName are for naming infrastructure readably.
	FlowRunName, FlowName string
	// FlowID is the run's flow; DeploymentID its deployment, empty when the
	// run has none. Backends key per-deployment resources (an ECS task
	// definition family) on them as Prefect's workers do.
	FlowID, DeploymentID string
	// WorkPool, WorkPoolID and WorkPoolType describe the pool the run came from.
	WorkPool, WorkPoolID, WorkPoolType string
	// Configuration is the job configuration rendered from the pool's base
	// job template and prepared for the run (env, labels, name, command), as
	// Prefect's worker would hand it to its run method.
	Configuration map[string]any
}

// InfraState is what the infrastructure of a run is doing.
type InfraState string

// The states of a run's infrastructure.
const (
	// StatePending: accepted but not yet running (provisioning, pulling).
	StatePending InfraState = "PENDING"
	// StateRunning: the job's process is running.
	StateRunning InfraState = "RUNNING"
	// StateExited: the job finished; Status.ExitCode says how.
	StateExited InfraState = "EXITED"
	// StateNotFound: the infrastructure does not exist (deleted, never started,
	// or forgotten by the platform).
	StateNotFound InfraState = "NOT_FOUND"
)

// Status is a backend's report on one run's infrastructure.
type Status struct {
	State InfraState
	// ExitCode is set when State is StateExited; -1 means the platform gave none.
	ExitCode int
	// Reason is the platform's own explanation (stoppedReason, condition
	// message, signal), empty when it gives none.
	Reason string
	// ExitedAt is when the job exited, when State is StateExited and the
	// platform says; zero otherwise.
	ExitedAt time.Time
	// Attempt is the Key of the attempt the infrastructure was started for,
	// as its tags, labels or name say; empty when the platform does not say
	// (infrastructure pushpool did not start, or that no longer exists).
	Attempt string
}

// StatusReader is implemented by backends that read the status of many
// pieces of infrastructure in few calls (ECS: DescribeTasks of up to 100
// tasks of a cluster at once). The reconciler reads every run it checks in
// a pass through it, and falls back to Status for each id it leaves out.
//
// Statuses returns the status of the ids it could read, as Status would
// report each. It leaves out ids it cannot read in a batch (malformed ids,
// ErrForeign infrastructure, a platform answer that needs a closer look),
// so the caller asks Status about them one by one. It stops at the first
// call that fails and returns what it read before with the error; an error
// wrapping ErrRetryable (throttling) means the caller should read no more
// for a while.
type StatusReader interface {
	Statuses(ctx context.Context, infrastructureIDs []string) (map[string]Status, error)
}

// Sweeper is implemented by backends whose platform keeps resources after
// a job finishes (Cloud Run jobs, which count against a per-project cap;
// ACI container groups, against a regional quota): Sweep removes the
// finished ones pushpool left behind and reports how many. The reconciler
// calls it once per pass.
type Sweeper interface {
	Sweep(ctx context.Context) (removed int, err error)
}

// InfrastructureMatcher is implemented by backends whose infrastructure ids
// have more than one spelling (an ECS cluster by name or by ARN), so that
// Reconciler.Observe recognises a pushed event about a run's recorded
// infrastructure.
type InfrastructureMatcher interface {
	SameInfrastructure(a, b string) bool
}

// ErrRetryable marks a backend error that a later attempt may cure
// (throttling, a transient outage). Anything else is permanent for the run.
var ErrRetryable = errors.New("retryable")

// ErrForeign marks an infrastructure id this backend cannot observe from
// where it runs (a process on another host, a task in another account).
// The reconciler leaves such runs to a dispatcher that can.
var ErrForeign = errors.New("infrastructure not observable from here")

// Sleep waits d, or until ctx ends (its cause is returned), for backends
// that wait between tries.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

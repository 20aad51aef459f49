// Package dispatch is pushpool's engine. A Dispatcher makes one pass over a
// work pool: it finds the flow runs that are due, claims each through
// Prefect's state orchestration (the lock between concurrent dispatchers),
// renders its job from the pool's base job template exactly as a Prefect
// worker would, starts it through a Backend and records what it started.
// The package imports no cloud SDK: backends live in dispatch/backend/*.
package dispatch

import (
	"context"
	"errors"
	"time"
)

// Backend starts and observes the infrastructure of flow runs on one kind of
// compute. Implementations live in dispatch/backend/<target>; the entry point
// chooses one by the pool's type.
type Backend interface {
	// Submit starts the job and returns its infrastructure id, in the format
	// Prefect's worker of the same type records as infrastructure_pid.
	// Submit is idempotent per job.FlowRunID: a second call for a run whose
	// infrastructure was already started returns that infrastructure's id and
	// starts nothing. Errors that a retry may cure wrap ErrRetryable.
	Submit(ctx context.Context, job Job) (string, error)
	// Status reports what the infrastructure is doing. Infrastructure that no
	// longer exists is reported as StateNotFound, not as an error.
	Status(ctx context.Context, infrastructureID string) (Status, error)
	// Stop stops the infrastructure. Infrastructure that does not exist (any
	// more) counts as stopped: Stop returns nil.
	Stop(ctx context.Context, infrastructureID string) error
}

// Job is what a backend is asked to start for one flow run.
type Job struct {
	// FlowRunID identifies the run; backends derive idempotency keys from it.
	FlowRunID string
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
}

// Sweeper is implemented by backends whose platform keeps resources after
// a job finishes (Cloud Run jobs, which count against a per-project cap):
// Sweep removes the finished ones pushpool left behind and reports how many.
// The reconciler calls it once per pass.
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

package prefect

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// StateType is the type of a Prefect state.
type StateType string

// The state types of Prefect 3.
const (
	StateScheduled  StateType = "SCHEDULED"
	StatePending    StateType = "PENDING"
	StateRunning    StateType = "RUNNING"
	StateCompleted  StateType = "COMPLETED"
	StateFailed     StateType = "FAILED"
	StateCancelled  StateType = "CANCELLED"
	StateCrashed    StateType = "CRASHED"
	StatePaused     StateType = "PAUSED"
	StateCancelling StateType = "CANCELLING"
)

// Terminal reports whether no further transition is expected from this type.
func (t StateType) Terminal() bool {
	switch t {
	case StateCompleted, StateFailed, StateCancelled, StateCrashed:
		return true
	}
	return false
}

// State is a flow run state.
type State struct {
	ID           string       `json:"id,omitempty"`
	Type         StateType    `json:"type"`
	Name         string       `json:"name"`
	Timestamp    *time.Time   `json:"timestamp,omitempty"`
	Message      *string      `json:"message"`
	StateDetails StateDetails `json:"state_details"`
	// Data is the state's result reference, kept verbatim.
	Data json.RawMessage `json:"data,omitempty"`
}

// StateDetails carries the details of a state that pushpool reads or sets.
type StateDetails struct {
	FlowRunID     string     `json:"flow_run_id,omitempty"`
	ScheduledTime *time.Time `json:"scheduled_time,omitempty"`
	// TransitionID makes a proposal idempotent: the server rejects a second
	// transition with the same id and returns the state the first one made.
	TransitionID                 string `json:"transition_id,omitempty"`
	DeploymentConcurrencyLeaseID string `json:"deployment_concurrency_lease_id,omitempty"`
}

// StateCreate is a proposed state.
type StateCreate struct {
	Type         StateType    `json:"type"`
	Name         string       `json:"name,omitempty"`
	Message      string       `json:"message,omitempty"`
	StateDetails StateDetails `json:"state_details"`
	// Data is a result reference to carry over, e.g. when restoring a state.
	Data json.RawMessage `json:"data,omitempty"`
}

// FlowRun is a flow run as the server returns it (FlowRunResponse).
type FlowRun struct {
	ID                     string         `json:"id"`
	Created                time.Time      `json:"created"`
	Updated                time.Time      `json:"updated"`
	Name                   string         `json:"name"`
	FlowID                 string         `json:"flow_id"`
	DeploymentID           *string        `json:"deployment_id"`
	DeploymentVersion      *string        `json:"deployment_version"`
	WorkQueueID            *string        `json:"work_queue_id"`
	WorkQueueName          *string        `json:"work_queue_name"`
	FlowVersion            *string        `json:"flow_version"`
	Parameters             map[string]any `json:"parameters"`
	IdempotencyKey         *string        `json:"idempotency_key"`
	Context                map[string]any `json:"context"`
	Tags                   []string       `json:"tags"`
	Labels                 map[string]any `json:"labels"`
	StateType              *StateType     `json:"state_type"`
	StateName              *string        `json:"state_name"`
	RunCount               int            `json:"run_count"`
	ExpectedStartTime      *time.Time     `json:"expected_start_time"`
	NextScheduledStartTime *time.Time     `json:"next_scheduled_start_time"`
	StartTime              *time.Time     `json:"start_time"`
	EndTime                *time.Time     `json:"end_time"`
	InfrastructurePID      *string        `json:"infrastructure_pid"`
	WorkPoolID             *string        `json:"work_pool_id"`
	WorkPoolName           *string        `json:"work_pool_name"`
	State                  *State         `json:"state"`
	JobVariables           map[string]any `json:"job_variables"`
}

// DueTime is when the run is scheduled to start: its next scheduled start
// time, else its expected start time, else zero.
func (r FlowRun) DueTime() time.Time {
	switch {
	case r.NextScheduledStartTime != nil:
		return *r.NextScheduledStartTime
	case r.ExpectedStartTime != nil:
		return *r.ExpectedStartTime
	}
	return time.Time{}
}

// FlowRunCreate is the body of CreateFlowRun, for a run without a deployment.
type FlowRunCreate struct {
	FlowID     string         `json:"flow_id"`
	Name       string         `json:"name,omitempty"`
	State      *StateCreate   `json:"state,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Tags       []string       `json:"tags,omitempty"`
}

// FlowRunUpdate is the body of UpdateFlowRun; nil fields are left unchanged.
type FlowRunUpdate struct {
	Name              *string        `json:"name,omitempty"`
	InfrastructurePID *string        `json:"infrastructure_pid,omitempty"`
	JobVariables      map[string]any `json:"job_variables,omitempty"`
	Tags              []string       `json:"tags,omitempty"`
}

// OrchestrationStatus is the server's verdict on a proposed state.
type OrchestrationStatus string

// The verdicts of Prefect's orchestration.
const (
	// Accept: the run is now in the proposed state.
	Accept OrchestrationStatus = "ACCEPT"
	// Reject: the run moved to the returned state instead (e.g. Scheduled
	// AwaitingConcurrencySlot, or Cancelled with CANCEL_NEW).
	Reject OrchestrationStatus = "REJECT"
	// Abort: the transition is not allowed; the run is not ours.
	Abort OrchestrationStatus = "ABORT"
	// Wait: try again after Details.DelaySeconds.
	Wait OrchestrationStatus = "WAIT"
)

// OrchestrationResult is the answer to SetFlowRunState.
type OrchestrationResult struct {
	State   *State              `json:"state"`
	Status  OrchestrationStatus `json:"status"`
	Details struct {
		Type         string  `json:"type"`
		Reason       string  `json:"reason"`
		DelaySeconds float64 `json:"delay_seconds"`
	} `json:"details"`
}

// CreateFlowRun creates a flow run of a flow (without a deployment).
func (c *Client) CreateFlowRun(ctx context.Context, in FlowRunCreate) (FlowRun, error) {
	return post[FlowRun](ctx, c, routeFlowRunCreate, in)
}

// ReadFlowRun reads a flow run by id.
func (c *Client) ReadFlowRun(ctx context.Context, id string) (FlowRun, error) {
	return get[FlowRun](ctx, c, routeFlowRunRead, id)
}

// UpdateFlowRun changes a flow run, e.g. to record its infrastructure_pid.
func (c *Client) UpdateFlowRun(ctx context.Context, id string, in FlowRunUpdate) error {
	return c.do(ctx, call{route: routeFlowRunUpdate, args: []string{id}, body: in})
}

// UpdateFlowRunLabels merges labels into a flow run's labels.
func (c *Client) UpdateFlowRunLabels(ctx context.Context, id string, labels map[string]string) error {
	return c.do(ctx, call{route: routeFlowRunLabels, args: []string{id}, body: labels})
}

// DeleteFlowRun deletes a flow run.
func (c *Client) DeleteFlowRun(ctx context.Context, id string) error {
	return c.do(ctx, call{route: routeFlowRunDelete, args: []string{id}})
}

// NewTransitionID returns a fresh transition id for a StateCreate, for a
// caller that must recognise its own state in the run's history later.
func NewTransitionID() string { return newUUID() }

// SetFlowRunState proposes a state through Prefect's orchestration, which is
// the lock between concurrent dispatchers: only an Accept means the caller
// made the transition. A transition id is added when the proposal has none,
// so a retry after a lost response cannot be mistaken for a lost race: the
// server rejects the repeat and returns the state the first attempt made,
// which this method reports as Accept.
func (c *Client) SetFlowRunState(ctx context.Context, id string, state StateCreate, force bool) (OrchestrationResult, error) {
	if state.StateDetails.TransitionID == "" {
		state.StateDetails.TransitionID = newUUID()
	}
	body := map[string]any{"state": state, "force": force}
	res, err := post[OrchestrationResult](ctx, c, routeFlowRunSetState, body, id)
	if err != nil {
		return res, err
	}
	if res.Status == Reject && res.State != nil && res.State.StateDetails.TransitionID == state.StateDetails.TransitionID {
		res.Status = Accept
	}
	return res, nil
}

// ResumeFlowRun resumes a paused or suspended flow run, as the UI's Resume
// does. A suspended run goes back to Scheduled, to be started again.
func (c *Client) ResumeFlowRun(ctx context.Context, id string) (OrchestrationResult, error) {
	return post[OrchestrationResult](ctx, c, routeFlowRunResume, map[string]any{}, id)
}

// ReadFlowRunStates returns a run's state history, oldest first.
func (c *Client) ReadFlowRunStates(ctx context.Context, flowRunID string) ([]State, error) {
	var out []State
	err := c.do(ctx, call{route: routeFlowRunStates, query: url.Values{"flow_run_id": {flowRunID}}, out: &out})
	return out, err
}

// FlowRunFilter selects flow runs; empty fields select everything.
type FlowRunFilter struct {
	IDs           []string
	StateTypes    []StateType
	StateNames    []string
	DeploymentIDs []string
	WorkPools     []string
	WorkQueues    []string
	// StartedSince selects runs whose start time, or expected start time
	// when they have not started, is at or after it (the server compares
	// the coalesce of the two, as its START_TIME sorts order by it).
	StartedSince *time.Time
	// Sort is one of the server's FlowRunSort values; empty means ID_DESC,
	// which keeps pages stable while runs change state.
	Sort string
}

func (f FlowRunFilter) body(offset, limit int) map[string]any {
	runs := map[string]any{}
	if len(f.IDs) > 0 {
		runs["id"] = map[string]any{"any_": f.IDs}
	}
	state := map[string]any{}
	if len(f.StateTypes) > 0 {
		state["type"] = map[string]any{"any_": f.StateTypes}
	}
	if len(f.StateNames) > 0 {
		state["name"] = map[string]any{"any_": f.StateNames}
	}
	if len(state) > 0 {
		runs["state"] = state
	}
	if len(f.DeploymentIDs) > 0 {
		runs["deployment_id"] = map[string]any{"any_": f.DeploymentIDs}
	}
	if len(f.WorkQueues) > 0 {
		runs["work_queue_name"] = map[string]any{"any_": f.WorkQueues}
	}
	if f.StartedSince != nil {
		runs["start_time"] = map[string]any{"after_": f.StartedSince.UTC()}
	}
	sort := f.Sort
	if sort == "" {
		sort = "ID_DESC"
	}
	body := map[string]any{"offset": offset, "limit": limit, "sort": sort, "flow_runs": runs}
	if len(f.WorkPools) > 0 {
		body["work_pools"] = map[string]any{"name": map[string]any{"any_": f.WorkPools}}
	}
	return body
}

// FilterFlowRuns returns every flow run the filter selects, paging past the
// server's 200-row limit.
func (c *Client) FilterFlowRuns(ctx context.Context, f FlowRunFilter) ([]FlowRun, error) {
	runs, err := pageAll(func(offset, limit int) ([]FlowRun, error) {
		return post[[]FlowRun](ctx, c, routeFlowRunFilter, f.body(offset, limit))
	})
	if err != nil {
		return nil, fmt.Errorf("filter flow runs: %w", err)
	}
	return runs, nil
}

// MaxPageSize is the most rows a filter request returns: the server's
// default PREFECT_SERVER_API_DEFAULT_LIMIT, which is also the largest limit
// it accepts.
const MaxPageSize = 200

// FilterFlowRunsPage returns one page of the flow runs the filter selects:
// up to limit runs (at most MaxPageSize) after skipping offset.
func (c *Client) FilterFlowRunsPage(ctx context.Context, f FlowRunFilter, offset, limit int) ([]FlowRun, error) {
	if limit <= 0 || limit > MaxPageSize {
		return nil, fmt.Errorf("filter flow runs: limit %d is outside 1..%d", limit, MaxPageSize)
	}
	runs, err := post[[]FlowRun](ctx, c, routeFlowRunFilter, f.body(offset, limit))
	if err != nil {
		return nil, fmt.Errorf("filter flow runs: %w", err)
	}
	return runs, nil
}

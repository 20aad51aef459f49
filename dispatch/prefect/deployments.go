package prefect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Deployment is a deployment as the server returns it (DeploymentResponse).
type Deployment struct {
	ID                     string               `json:"id"`
	Created                time.Time            `json:"created"`
	Updated                time.Time            `json:"updated"`
	Name                   string               `json:"name"`
	Version                *string              `json:"version"`
	Description            *string              `json:"description"`
	FlowID                 string               `json:"flow_id"`
	Paused                 bool                 `json:"paused"`
	Schedules              []DeploymentSchedule `json:"schedules"`
	ConcurrencyLimit       *int                 `json:"concurrency_limit"`
	ConcurrencyOptions     *ConcurrencyOptions  `json:"concurrency_options"`
	JobVariables           map[string]any       `json:"job_variables"`
	Parameters             map[string]any       `json:"parameters"`
	Tags                   []string             `json:"tags"`
	Labels                 map[string]any       `json:"labels"`
	WorkQueueName          *string              `json:"work_queue_name"`
	WorkQueueID            *string              `json:"work_queue_id"`
	ParameterOpenAPISchema map[string]any       `json:"parameter_openapi_schema"`
	Path                   *string              `json:"path"`
	PullSteps              []map[string]any     `json:"pull_steps"`
	Entrypoint             *string              `json:"entrypoint"`
	StorageDocumentID      *string              `json:"storage_document_id"`
	WorkPoolName           *string              `json:"work_pool_name"`
	// Status is READY or NOT_READY.
	Status                 *string `json:"status"`
	EnforceParameterSchema bool    `json:"enforce_parameter_schema"`

	// GlobalConcurrencyLimit is the concurrency limit linked to the
	// deployment: the one the server keeps for the deployment's own
	// concurrency_limit (named DeploymentLimitName(ID)), or a global limit
	// linked by its id. ConcurrencyLimit is always null in answers of
	// Prefect 3.1 and later.
	GlobalConcurrencyLimit *GlobalConcurrencyLimit `json:"global_concurrency_limit"`
}

// ConcurrencyOptions say what happens to a run that finds the deployment's
// concurrency limit full: ENQUEUE (wait) or CANCEL_NEW.
type ConcurrencyOptions struct {
	CollisionStrategy string `json:"collision_strategy"`
}

// DeploymentCreate is the body of CreateDeployment. The server upserts on
// (flow_id, name).
type DeploymentCreate struct {
	Name                   string              `json:"name"`
	FlowID                 string              `json:"flow_id"`
	Paused                 bool                `json:"paused,omitempty"`
	Schedules              []ScheduleCreate    `json:"schedules,omitempty"`
	ConcurrencyLimit       *int                `json:"concurrency_limit,omitempty"`
	ConcurrencyOptions     *ConcurrencyOptions `json:"concurrency_options,omitempty"`
	EnforceParameterSchema *bool               `json:"enforce_parameter_schema,omitempty"`
	ParameterOpenAPISchema map[string]any      `json:"parameter_openapi_schema,omitempty"`
	Parameters             map[string]any      `json:"parameters,omitempty"`
	Tags                   []string            `json:"tags,omitempty"`
	PullSteps              []map[string]any    `json:"pull_steps,omitempty"`
	WorkQueueName          string              `json:"work_queue_name,omitempty"`
	WorkPoolName           string              `json:"work_pool_name,omitempty"`
	StorageDocumentID      *string             `json:"storage_document_id,omitempty"`
	Description            *string             `json:"description,omitempty"`
	Path                   *string             `json:"path,omitempty"`
	Version                *string             `json:"version,omitempty"`
	Entrypoint             *string             `json:"entrypoint,omitempty"`
	JobVariables           map[string]any      `json:"job_variables,omitempty"`
}

// DeploymentUpdate is the body of UpdateDeployment; nil fields are left unchanged.
type DeploymentUpdate struct {
	Version                *string             `json:"version,omitempty"`
	Description            *string             `json:"description,omitempty"`
	Paused                 *bool               `json:"paused,omitempty"`
	ConcurrencyLimit       *int                `json:"concurrency_limit,omitempty"`
	ConcurrencyOptions     *ConcurrencyOptions `json:"concurrency_options,omitempty"`
	Parameters             map[string]any      `json:"parameters,omitempty"`
	ParameterOpenAPISchema map[string]any      `json:"parameter_openapi_schema,omitempty"`
	Tags                   []string            `json:"tags,omitempty"`
	WorkQueueName          *string             `json:"work_queue_name,omitempty"`
	WorkPoolName           *string             `json:"work_pool_name,omitempty"`
	Path                   *string             `json:"path,omitempty"`
	JobVariables           map[string]any      `json:"job_variables,omitempty"`
	PullSteps              []map[string]any    `json:"pull_steps,omitempty"`
	Entrypoint             *string             `json:"entrypoint,omitempty"`
	StorageDocumentID      *string             `json:"storage_document_id,omitempty"`
	EnforceParameterSchema *bool               `json:"enforce_parameter_schema,omitempty"`
}

// DeploymentSettings is the body of SetDeployment. Unlike DeploymentUpdate,
// every field is sent, so nil clears a value on the server: it reconciles a
// deployment to a declared state (the Terraform provider's update). Schedules
// are never sent, so they are left as they are.
type DeploymentSettings struct {
	Version            *string             `json:"version"`
	Description        *string             `json:"description"`
	Paused             bool                `json:"paused"`
	ConcurrencyOptions *ConcurrencyOptions `json:"concurrency_options"`
	// Parameters, JobVariables and Tags are sent as {} or [] when nil: the
	// server keeps the old job variables on null.
	Parameters map[string]any `json:"parameters"`
	// ParameterOpenAPISchema nil is sent as {}, which the server stores as
	// {"type": "object", "properties": {}}: a null schema makes every later
	// update fail with 409 while EnforceParameterSchema is on.
	ParameterOpenAPISchema map[string]any   `json:"parameter_openapi_schema"`
	Tags                   []string         `json:"tags"`
	WorkQueueName          *string          `json:"work_queue_name"`
	WorkPoolName           *string          `json:"work_pool_name"`
	Path                   *string          `json:"path"`
	JobVariables           map[string]any   `json:"job_variables"`
	PullSteps              []map[string]any `json:"pull_steps"`
	Entrypoint             *string          `json:"entrypoint"`
	StorageDocumentID      *string          `json:"storage_document_id"`
	EnforceParameterSchema bool             `json:"enforce_parameter_schema"`
	// ConcurrencyLimit is sent only when SetConcurrencyLimit is true, as
	// the server deletes whatever concurrency limit is linked to the
	// deployment when it receives null, even a global limit linked by id
	// and shared with other deployments.
	ConcurrencyLimit    *int `json:"-"`
	SetConcurrencyLimit bool `json:"-"`
}

// DeploymentLimitName is the name the server gives the concurrency limit it
// keeps for a deployment's own concurrency_limit.
func DeploymentLimitName(deploymentID string) string { return "deployment:" + deploymentID }

// DeploymentFlowRunCreate is the body of CreateFlowRunFromDeployment.
type DeploymentFlowRunCreate struct {
	Name          string         `json:"name,omitempty"`
	Parameters    map[string]any `json:"parameters,omitempty"`
	Tags          []string       `json:"tags,omitempty"`
	State         *StateCreate   `json:"state,omitempty"`
	JobVariables  map[string]any `json:"job_variables,omitempty"`
	WorkQueueName string         `json:"work_queue_name,omitempty"`
	// IdempotencyKey makes a repeated request return the run it created first.
	IdempotencyKey string         `json:"idempotency_key,omitempty"`
	Context        map[string]any `json:"context,omitempty"`
}

// CreateDeployment creates a deployment, or updates the one with the same
// flow and name.
func (c *Client) CreateDeployment(ctx context.Context, in DeploymentCreate) (Deployment, error) {
	return post[Deployment](ctx, c, routeDeploymentCreate, in)
}

// ReadDeployment reads a deployment by id.
func (c *Client) ReadDeployment(ctx context.Context, id string) (Deployment, error) {
	return get[Deployment](ctx, c, routeDeploymentRead, id)
}

// ReadDeploymentByName reads a deployment by its flow's name and its own.
func (c *Client) ReadDeploymentByName(ctx context.Context, flowName, name string) (Deployment, error) {
	return get[Deployment](ctx, c, routeDeploymentByName, flowName, name)
}

// UpdateDeployment changes a deployment.
func (c *Client) UpdateDeployment(ctx context.Context, id string, in DeploymentUpdate) error {
	return c.do(ctx, call{route: routeDeploymentUpdate, args: []string{id}, body: in})
}

// SetDeployment sets every changeable field of a deployment to the given
// values (see DeploymentSettings).
func (c *Client) SetDeployment(ctx context.Context, id string, in DeploymentSettings) error {
	if in.Parameters == nil {
		in.Parameters = map[string]any{}
	}
	if in.ParameterOpenAPISchema == nil {
		in.ParameterOpenAPISchema = map[string]any{}
	}
	if in.JobVariables == nil {
		in.JobVariables = map[string]any{}
	}
	if in.Tags == nil {
		in.Tags = []string{}
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode deployment %s settings: %w", id, err)
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep the numbers of parameters and job variables exact
	if err := dec.Decode(&body); err != nil {
		return fmt.Errorf("encode deployment %s settings: %w", id, err)
	}
	if in.SetConcurrencyLimit {
		body["concurrency_limit"] = in.ConcurrencyLimit
	}
	return c.do(ctx, call{route: routeDeploymentUpdate, args: []string{id}, body: body})
}

// DeleteDeployment deletes a deployment.
func (c *Client) DeleteDeployment(ctx context.Context, id string) error {
	return c.do(ctx, call{route: routeDeploymentDelete, args: []string{id}})
}

// ReadDeploymentsByID reads the deployments with the given ids; missing ids
// are simply absent from the answer.
func (c *Client) ReadDeploymentsByID(ctx context.Context, ids []string) ([]Deployment, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return pageAll(func(offset, limit int) ([]Deployment, error) {
		body := map[string]any{"offset": offset, "limit": limit, "deployments": map[string]any{"id": map[string]any{"any_": ids}}}
		return post[[]Deployment](ctx, c, routeDeploymentFilter, body)
	})
}

// CreateFlowRunFromDeployment schedules a run of a deployment. With no state
// the run is scheduled for now.
func (c *Client) CreateFlowRunFromDeployment(ctx context.Context, deploymentID string, in DeploymentFlowRunCreate) (FlowRun, error) {
	return post[FlowRun](ctx, c, routeDeploymentRun, in, deploymentID)
}

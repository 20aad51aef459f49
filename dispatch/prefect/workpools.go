package prefect

import (
	"context"
	"time"
)

// WorkPool is a work pool as the server returns it (WorkPoolResponse).
type WorkPool struct {
	ID               string         `json:"id"`
	Created          time.Time      `json:"created"`
	Updated          time.Time      `json:"updated"`
	Name             string         `json:"name"`
	Description      *string        `json:"description"`
	Type             string         `json:"type"`
	BaseJobTemplate  map[string]any `json:"base_job_template"`
	IsPaused         bool           `json:"is_paused"`
	ConcurrencyLimit *int           `json:"concurrency_limit"`
	// Status is READY, NOT_READY or PAUSED.
	Status         string `json:"status"`
	DefaultQueueID string `json:"default_queue_id"`
	ActiveSlots    *int   `json:"active_slots"`
}

// WorkPoolCreate is the body of CreateWorkPool.
type WorkPoolCreate struct {
	Name             string         `json:"name"`
	Description      *string        `json:"description,omitempty"`
	Type             string         `json:"type,omitempty"`
	BaseJobTemplate  map[string]any `json:"base_job_template,omitempty"`
	IsPaused         bool           `json:"is_paused,omitempty"`
	ConcurrencyLimit *int           `json:"concurrency_limit,omitempty"`
}

// WorkPoolUpdate is the body of UpdateWorkPool; nil fields are left unchanged.
// ConcurrencyLimit is always sent: nil removes the limit.
type WorkPoolUpdate struct {
	Description      *string        `json:"description,omitempty"`
	IsPaused         *bool          `json:"is_paused,omitempty"`
	BaseJobTemplate  map[string]any `json:"base_job_template,omitempty"`
	ConcurrencyLimit *int           `json:"concurrency_limit"`
}

// ScheduledRunsRequest asks for a pool's due flow runs.
type ScheduledRunsRequest struct {
	// WorkQueueNames limits the poll to these queues; empty means all queues.
	WorkQueueNames []string `json:"work_queue_names,omitempty"`
	// ScheduledBefore and ScheduledAfter bound next_scheduled_start_time.
	ScheduledBefore *time.Time `json:"scheduled_before,omitempty"`
	ScheduledAfter  *time.Time `json:"scheduled_after,omitempty"`
	// Limit caps the answer; zero means the server's default (200), which is
	// also the largest value it accepts.
	Limit int `json:"limit,omitempty"`
}

// ScheduledRun is one due run from GetScheduledFlowRuns (WorkerFlowRunResponse).
type ScheduledRun struct {
	WorkPoolID  string  `json:"work_pool_id"`
	WorkQueueID string  `json:"work_queue_id"`
	FlowRun     FlowRun `json:"flow_run"`
}

// Worker is a worker registered with a pool through heartbeats (WorkerResponse).
type Worker struct {
	ID                       string     `json:"id"`
	Name                     string     `json:"name"`
	WorkPoolID               string     `json:"work_pool_id"`
	LastHeartbeatTime        *time.Time `json:"last_heartbeat_time"`
	HeartbeatIntervalSeconds *int       `json:"heartbeat_interval_seconds"`
	// Status is ONLINE or OFFLINE.
	Status string `json:"status"`
}

// CreateWorkPool creates a work pool.
func (c *Client) CreateWorkPool(ctx context.Context, in WorkPoolCreate) (WorkPool, error) {
	return post[WorkPool](ctx, c, routeWorkPoolCreate, in)
}

// ReadWorkPool reads a work pool by name.
func (c *Client) ReadWorkPool(ctx context.Context, name string) (WorkPool, error) {
	return get[WorkPool](ctx, c, routeWorkPoolRead, name)
}

// UpdateWorkPool changes a work pool.
func (c *Client) UpdateWorkPool(ctx context.Context, name string, in WorkPoolUpdate) error {
	return c.do(ctx, call{route: routeWorkPoolUpdate, args: []string{name}, body: in})
}

// DeleteWorkPool deletes a work pool and its queues.
func (c *Client) DeleteWorkPool(ctx context.Context, name string) error {
	return c.do(ctx, call{route: routeWorkPoolDelete, args: []string{name}})
}

// ListWorkPools returns every work pool, paging through the server's limit.
func (c *Client) ListWorkPools(ctx context.Context) ([]WorkPool, error) {
	return pageAll(func(offset, limit int) ([]WorkPool, error) {
		return post[[]WorkPool](ctx, c, routeWorkPoolFilter, map[string]any{"offset": offset, "limit": limit})
	})
}

// GetScheduledFlowRuns returns the pool's runs that are due, ordered by queue
// priority then scheduled time, honouring paused pools and queues and their
// concurrency limits. It claims nothing: SetFlowRunState does.
func (c *Client) GetScheduledFlowRuns(ctx context.Context, pool string, in ScheduledRunsRequest) ([]ScheduledRun, error) {
	return post[[]ScheduledRun](ctx, c, routeWorkPoolScheduled, in, pool)
}

// WorkerHeartbeat registers or refreshes a worker named name in the pool,
// which makes the server show the pool READY.
func (c *Client) WorkerHeartbeat(ctx context.Context, pool, name string, interval time.Duration) error {
	body := map[string]any{"name": name, "heartbeat_interval_seconds": int(interval.Seconds())}
	return c.do(ctx, call{route: routeWorkerHeartbeat, args: []string{pool}, body: body})
}

// ListWorkers returns the workers known to a pool.
func (c *Client) ListWorkers(ctx context.Context, pool string) ([]Worker, error) {
	return post[[]Worker](ctx, c, routeWorkerFilter, map[string]any{}, pool)
}

// ReadWorkerMetadata returns Prefect's bundled catalogue of worker types,
// including each type's default base job template, keyed by collection then
// worker type.
func (c *Client) ReadWorkerMetadata(ctx context.Context) (map[string]map[string]WorkerMetadata, error) {
	return get[map[string]map[string]WorkerMetadata](ctx, c, routeWorkerMetadata, "aggregate-worker-metadata")
}

// WorkerMetadata describes one worker type in Prefect's catalogue.
type WorkerMetadata struct {
	Type                        string         `json:"type"`
	DisplayName                 string         `json:"display_name"`
	DefaultBaseJobConfiguration map[string]any `json:"default_base_job_configuration"`
	Description                 string         `json:"description"`
	DocumentationURL            string         `json:"documentation_url"`
	IsBeta                      bool           `json:"is_beta"`
	InstallCommand              string         `json:"install_command"`
	LogoURL                     string         `json:"logo_url"`
}

// pageAll calls fetch with growing offsets until a page comes back short.
func pageAll[T any](fetch func(offset, limit int) ([]T, error)) ([]T, error) {
	const limit = 200 // PREFECT_SERVER_API_DEFAULT_LIMIT, the largest the server accepts
	var all []T
	for offset := 0; ; offset += limit {
		page, err := fetch(offset, limit)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < limit {
			return all, nil
		}
	}
}

// WorkPoolSettings is the body of SetWorkPool. Unlike WorkPoolUpdate, every
// field is sent, so a nil Description or ConcurrencyLimit clears the value on
// the server: it reconciles a pool to a declared state (the Terraform
// provider's update).
type WorkPoolSettings struct {
	Description *string `json:"description"`
	IsPaused    bool    `json:"is_paused"`
	// BaseJobTemplate replaces the pool's template. Nil is sent as {}: the
	// server answers an explicit null with a 500.
	BaseJobTemplate  map[string]any `json:"base_job_template"`
	ConcurrencyLimit *int           `json:"concurrency_limit"`
}

// SetWorkPool sets every changeable field of a work pool to the given values.
func (c *Client) SetWorkPool(ctx context.Context, name string, in WorkPoolSettings) error {
	if in.BaseJobTemplate == nil {
		in.BaseJobTemplate = map[string]any{}
	}
	return c.do(ctx, call{route: routeWorkPoolUpdate, args: []string{name}, body: in})
}

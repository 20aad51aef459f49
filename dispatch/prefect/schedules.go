package prefect

import (
	"context"
	"time"
)

// Schedule is one of Prefect's schedule shapes: {"interval": seconds,
// "anchor_date", "timezone"}, {"cron", "timezone", "day_or"} or {"rrule",
// "timezone"}. It is kept as a JSON object so no field the server adds is lost.
type Schedule map[string]any

// DeploymentSchedule is a schedule attached to a deployment.
type DeploymentSchedule struct {
	ID               string         `json:"id"`
	Created          time.Time      `json:"created"`
	Updated          time.Time      `json:"updated"`
	DeploymentID     string         `json:"deployment_id"`
	Schedule         Schedule       `json:"schedule"`
	Active           bool           `json:"active"`
	MaxScheduledRuns *int           `json:"max_scheduled_runs"`
	Parameters       map[string]any `json:"parameters"`
	Slug             *string        `json:"slug"`
}

// ScheduleCreate is the body of CreateDeploymentSchedules.
type ScheduleCreate struct {
	Schedule         Schedule       `json:"schedule"`
	Active           bool           `json:"active"`
	MaxScheduledRuns *int           `json:"max_scheduled_runs,omitempty"`
	Parameters       map[string]any `json:"parameters,omitempty"`
	Slug             *string        `json:"slug,omitempty"`
}

// ScheduleUpdate is the body of UpdateDeploymentSchedule; nil fields are left unchanged.
type ScheduleUpdate struct {
	Schedule         Schedule       `json:"schedule,omitempty"`
	Active           *bool          `json:"active,omitempty"`
	MaxScheduledRuns *int           `json:"max_scheduled_runs,omitempty"`
	Parameters       map[string]any `json:"parameters,omitempty"`
	Slug             *string        `json:"slug,omitempty"`
}

// CreateDeploymentSchedules adds schedules to a deployment.
func (c *Client) CreateDeploymentSchedules(ctx context.Context, deploymentID string, in []ScheduleCreate) ([]DeploymentSchedule, error) {
	return post[[]DeploymentSchedule](ctx, c, routeScheduleCreate, in, deploymentID)
}

// ListDeploymentSchedules returns a deployment's schedules.
func (c *Client) ListDeploymentSchedules(ctx context.Context, deploymentID string) ([]DeploymentSchedule, error) {
	return get[[]DeploymentSchedule](ctx, c, routeScheduleList, deploymentID)
}

// UpdateDeploymentSchedule changes one schedule of a deployment.
func (c *Client) UpdateDeploymentSchedule(ctx context.Context, deploymentID, scheduleID string, in ScheduleUpdate) error {
	return c.do(ctx, call{route: routeScheduleUpdate, args: []string{deploymentID, scheduleID}, body: in})
}

// DeleteDeploymentSchedule removes one schedule from a deployment.
func (c *Client) DeleteDeploymentSchedule(ctx context.Context, deploymentID, scheduleID string) error {
	return c.do(ctx, call{route: routeScheduleDelete, args: []string{deploymentID, scheduleID}})
}

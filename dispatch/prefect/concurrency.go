package prefect

import (
	"context"
	"time"
)

// GlobalConcurrencyLimit is a named concurrency limit (v2 API).
type GlobalConcurrencyLimit struct {
	ID                 string     `json:"id,omitempty"`
	Created            *time.Time `json:"created,omitempty"`
	Updated            *time.Time `json:"updated,omitempty"`
	Name               string     `json:"name"`
	Limit              int        `json:"limit"`
	Active             bool       `json:"active"`
	ActiveSlots        int        `json:"active_slots"`
	SlotDecayPerSecond float64    `json:"slot_decay_per_second"`
}

// GlobalConcurrencyLimitUpdate is the body of UpdateGlobalConcurrencyLimit;
// nil fields are left unchanged.
type GlobalConcurrencyLimitUpdate struct {
	Name               *string  `json:"name,omitempty"`
	Limit              *int     `json:"limit,omitempty"`
	Active             *bool    `json:"active,omitempty"`
	ActiveSlots        *int     `json:"active_slots,omitempty"`
	SlotDecayPerSecond *float64 `json:"slot_decay_per_second,omitempty"`
}

// CreateGlobalConcurrencyLimit creates a global concurrency limit.
func (c *Client) CreateGlobalConcurrencyLimit(ctx context.Context, l GlobalConcurrencyLimit) (GlobalConcurrencyLimit, error) {
	body := map[string]any{"name": l.Name, "limit": l.Limit, "active": l.Active,
		"active_slots": l.ActiveSlots, "slot_decay_per_second": l.SlotDecayPerSecond}
	return post[GlobalConcurrencyLimit](ctx, c, routeGlobalLimitCreate, body)
}

// ReadGlobalConcurrencyLimit reads a global concurrency limit by id or name.
func (c *Client) ReadGlobalConcurrencyLimit(ctx context.Context, idOrName string) (GlobalConcurrencyLimit, error) {
	return get[GlobalConcurrencyLimit](ctx, c, routeGlobalLimitRead, idOrName)
}

// UpdateGlobalConcurrencyLimit changes the given fields of a global
// concurrency limit.
func (c *Client) UpdateGlobalConcurrencyLimit(ctx context.Context, idOrName string, in GlobalConcurrencyLimitUpdate) error {
	return c.do(ctx, call{route: routeGlobalLimitUpdate, args: []string{idOrName}, body: in})
}

// DeleteGlobalConcurrencyLimit deletes a global concurrency limit.
func (c *Client) DeleteGlobalConcurrencyLimit(ctx context.Context, idOrName string) error {
	return c.do(ctx, call{route: routeGlobalLimitDelete, args: []string{idOrName}})
}

// TaskRunConcurrencyLimit limits concurrent task runs carrying a tag (v1 API).
// Prefect 3.9 stores it as the global concurrency limit named "tag:<tag>",
// with the same ID.
type TaskRunConcurrencyLimit struct {
	ID               string     `json:"id,omitempty"`
	Created          *time.Time `json:"created,omitempty"`
	Updated          *time.Time `json:"updated,omitempty"`
	Tag              string     `json:"tag"`
	ConcurrencyLimit int        `json:"concurrency_limit"`
	// ActiveSlots lists the task runs holding a slot.
	ActiveSlots []string `json:"active_slots,omitempty"`
}

// CreateTaskRunConcurrencyLimit creates the limit for a tag, or sets the
// limit of the tag's existing one (keeping its ID and the slots in use).
func (c *Client) CreateTaskRunConcurrencyLimit(ctx context.Context, l TaskRunConcurrencyLimit) (TaskRunConcurrencyLimit, error) {
	return post[TaskRunConcurrencyLimit](ctx, c, routeTaskLimitCreate, map[string]any{"tag": l.Tag, "concurrency_limit": l.ConcurrencyLimit})
}

// ReadTaskRunConcurrencyLimit reads the limit for a tag.
func (c *Client) ReadTaskRunConcurrencyLimit(ctx context.Context, tag string) (TaskRunConcurrencyLimit, error) {
	return get[TaskRunConcurrencyLimit](ctx, c, routeTaskLimitReadByTag, tag)
}

// ReadTaskRunConcurrencyLimitByID reads a task run concurrency limit by id.
func (c *Client) ReadTaskRunConcurrencyLimitByID(ctx context.Context, id string) (TaskRunConcurrencyLimit, error) {
	return get[TaskRunConcurrencyLimit](ctx, c, routeTaskLimitRead, id)
}

// DeleteTaskRunConcurrencyLimit deletes the limit for a tag.
func (c *Client) DeleteTaskRunConcurrencyLimit(ctx context.Context, tag string) error {
	return c.do(ctx, call{route: routeTaskLimitDelete, args: []string{tag}})
}

// DeleteTaskRunConcurrencyLimitByID deletes a task run concurrency limit by
// id; the server revokes the slots its task runs hold.
func (c *Client) DeleteTaskRunConcurrencyLimitByID(ctx context.Context, id string) error {
	return c.do(ctx, call{route: routeTaskLimitDeleteID, args: []string{id}})
}

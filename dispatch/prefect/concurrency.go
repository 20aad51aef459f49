package prefect

import "context"

// GlobalConcurrencyLimit is a named concurrency limit (v2 API).
type GlobalConcurrencyLimit struct {
	ID                 string  `json:"id,omitempty"`
	Name               string  `json:"name"`
	Limit              int     `json:"limit"`
	Active             bool    `json:"active"`
	ActiveSlots        int     `json:"active_slots"`
	SlotDecayPerSecond float64 `json:"slot_decay_per_second"`
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

// UpdateGlobalConcurrencyLimit replaces a global concurrency limit's settings.
func (c *Client) UpdateGlobalConcurrencyLimit(ctx context.Context, idOrName string, l GlobalConcurrencyLimit) error {
	body := map[string]any{"name": l.Name, "limit": l.Limit, "active": l.Active,
		"active_slots": l.ActiveSlots, "slot_decay_per_second": l.SlotDecayPerSecond}
	return c.do(ctx, call{route: routeGlobalLimitUpdate, args: []string{idOrName}, body: body})
}

// DeleteGlobalConcurrencyLimit deletes a global concurrency limit.
func (c *Client) DeleteGlobalConcurrencyLimit(ctx context.Context, idOrName string) error {
	return c.do(ctx, call{route: routeGlobalLimitDelete, args: []string{idOrName}})
}

// TaskRunConcurrencyLimit limits concurrent task runs carrying a tag (v1 API).
type TaskRunConcurrencyLimit struct {
	ID               string `json:"id,omitempty"`
	Tag              string `json:"tag"`
	ConcurrencyLimit int    `json:"concurrency_limit"`
}

// CreateTaskRunConcurrencyLimit creates (or replaces) the limit for a tag.
func (c *Client) CreateTaskRunConcurrencyLimit(ctx context.Context, l TaskRunConcurrencyLimit) (TaskRunConcurrencyLimit, error) {
	return post[TaskRunConcurrencyLimit](ctx, c, routeTaskLimitCreate, map[string]any{"tag": l.Tag, "concurrency_limit": l.ConcurrencyLimit})
}

// ReadTaskRunConcurrencyLimit reads the limit for a tag.
func (c *Client) ReadTaskRunConcurrencyLimit(ctx context.Context, tag string) (TaskRunConcurrencyLimit, error) {
	return get[TaskRunConcurrencyLimit](ctx, c, routeTaskLimitReadByTag, tag)
}

// DeleteTaskRunConcurrencyLimit deletes the limit for a tag.
func (c *Client) DeleteTaskRunConcurrencyLimit(ctx context.Context, tag string) error {
	return c.do(ctx, call{route: routeTaskLimitDelete, args: []string{tag}})
}

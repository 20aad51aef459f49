package prefect

import (
	"context"
	"time"
)

// WorkQueue is a queue inside a work pool (WorkQueueResponse).
type WorkQueue struct {
	ID               string     `json:"id"`
	Created          time.Time  `json:"created"`
	Updated          time.Time  `json:"updated"`
	Name             string     `json:"name"`
	Description      *string    `json:"description"`
	IsPaused         bool       `json:"is_paused"`
	ConcurrencyLimit *int       `json:"concurrency_limit"`
	Priority         int        `json:"priority"`
	WorkPoolID       string     `json:"work_pool_id"`
	WorkPoolName     string     `json:"work_pool_name"`
	LastPolled       *time.Time `json:"last_polled"`
	// Status is READY, NOT_READY or PAUSED.
	Status string `json:"status"`
}

// WorkQueueCreate is the body of CreateWorkQueue.
type WorkQueueCreate struct {
	Name             string  `json:"name"`
	Description      *string `json:"description,omitempty"`
	IsPaused         bool    `json:"is_paused,omitempty"`
	ConcurrencyLimit *int    `json:"concurrency_limit,omitempty"`
	Priority         *int    `json:"priority,omitempty"`
}

// WorkQueueUpdate is the body of UpdateWorkQueue; nil fields are left
// unchanged, except ConcurrencyLimit, which is always sent (nil removes it).
type WorkQueueUpdate struct {
	Name             *string `json:"name,omitempty"`
	Description      *string `json:"description,omitempty"`
	IsPaused         *bool   `json:"is_paused,omitempty"`
	ConcurrencyLimit *int    `json:"concurrency_limit"`
	Priority         *int    `json:"priority,omitempty"`
}

// CreateWorkQueue creates a queue in a pool.
func (c *Client) CreateWorkQueue(ctx context.Context, pool string, in WorkQueueCreate) (WorkQueue, error) {
	return post[WorkQueue](ctx, c, routeWorkQueueCreate, in, pool)
}

// ReadWorkQueue reads a queue by pool and queue name.
func (c *Client) ReadWorkQueue(ctx context.Context, pool, name string) (WorkQueue, error) {
	return get[WorkQueue](ctx, c, routeWorkQueueRead, pool, name)
}

// UpdateWorkQueue changes a queue.
func (c *Client) UpdateWorkQueue(ctx context.Context, pool, name string, in WorkQueueUpdate) error {
	return c.do(ctx, call{route: routeWorkQueueUpdate, args: []string{pool, name}, body: in})
}

// DeleteWorkQueue deletes a queue.
func (c *Client) DeleteWorkQueue(ctx context.Context, pool, name string) error {
	return c.do(ctx, call{route: routeWorkQueueDelete, args: []string{pool, name}})
}

// ListWorkQueues returns every queue of a pool.
func (c *Client) ListWorkQueues(ctx context.Context, pool string) ([]WorkQueue, error) {
	return pageAll(func(offset, limit int) ([]WorkQueue, error) {
		return post[[]WorkQueue](ctx, c, routeWorkQueueFilter, map[string]any{"offset": offset, "limit": limit}, pool)
	})
}

// WorkQueueSettings is the body of SetWorkQueue. Unlike WorkQueueUpdate,
// Description and ConcurrencyLimit are always sent, so "" and nil clear them
// (the server stores a queue's missing description as "" and rejects null
// with a 409); a nil Name or Priority leaves the value unchanged.
type WorkQueueSettings struct {
	Name             *string `json:"name,omitempty"`
	Description      string  `json:"description"`
	IsPaused         bool    `json:"is_paused"`
	ConcurrencyLimit *int    `json:"concurrency_limit"`
	Priority         *int    `json:"priority,omitempty"`
}

// SetWorkQueue sets a queue's changeable fields to the given values; name is
// the queue's current name.
func (c *Client) SetWorkQueue(ctx context.Context, pool, name string, in WorkQueueSettings) error {
	return c.do(ctx, call{route: routeWorkQueueUpdate, args: []string{pool, name}, body: in})
}

package prefect

import (
	"context"
	"time"
)

// Flow is a flow as the server returns it.
type Flow struct {
	ID      string            `json:"id"`
	Created time.Time         `json:"created"`
	Updated time.Time         `json:"updated"`
	Name    string            `json:"name"`
	Tags    []string          `json:"tags"`
	Labels  map[string]string `json:"labels"`
}

// CreateFlow creates a flow, or returns the existing flow of that name.
func (c *Client) CreateFlow(ctx context.Context, name string, tags []string) (Flow, error) {
	if tags == nil {
		tags = []string{}
	}
	return post[Flow](ctx, c, routeFlowCreate, map[string]any{"name": name, "tags": tags})
}

// ReadFlow reads a flow by id.
func (c *Client) ReadFlow(ctx context.Context, id string) (Flow, error) {
	return get[Flow](ctx, c, routeFlowRead, id)
}

// ReadFlowByName reads a flow by name.
func (c *Client) ReadFlowByName(ctx context.Context, name string) (Flow, error) {
	return get[Flow](ctx, c, routeFlowReadByName, name)
}

// DeleteFlow deletes a flow with its deployments.
func (c *Client) DeleteFlow(ctx context.Context, id string) error {
	return c.do(ctx, call{route: routeFlowDelete, args: []string{id}})
}

// UpdateFlowTags replaces a flow's tags; a flow's name cannot change.
func (c *Client) UpdateFlowTags(ctx context.Context, id string, tags []string) error {
	if tags == nil {
		tags = []string{}
	}
	return c.do(ctx, call{route: routeFlowUpdate, args: []string{id}, body: map[string]any{"tags": tags}})
}

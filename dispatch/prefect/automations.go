package prefect

import (
	"context"
	"time"
)

// Automation is an automation: a trigger and the actions it runs. Trigger and
// actions are kept as JSON objects, the shapes of which the server validates.
type Automation struct {
	ID               string           `json:"id,omitempty"`
	Name             string           `json:"name"`
	Description      string           `json:"description"`
	Enabled          bool             `json:"enabled"`
	Tags             []string         `json:"tags"`
	Trigger          map[string]any   `json:"trigger"`
	Actions          []map[string]any `json:"actions"`
	ActionsOnTrigger []map[string]any `json:"actions_on_trigger"`
	ActionsOnResolve []map[string]any `json:"actions_on_resolve"`
	// Created and Updated are set by the server and never sent.
	Created *time.Time `json:"created,omitempty"`
	Updated *time.Time `json:"updated,omitempty"`
}

func (a Automation) body() Automation {
	a.ID, a.Created, a.Updated = "", nil, nil
	for _, p := range []*[]map[string]any{&a.Actions, &a.ActionsOnTrigger, &a.ActionsOnResolve} {
		if *p == nil {
			*p = []map[string]any{}
		}
	}
	if a.Tags == nil {
		a.Tags = []string{}
	}
	return a
}

// CreateAutomation creates an automation.
func (c *Client) CreateAutomation(ctx context.Context, a Automation) (Automation, error) {
	return post[Automation](ctx, c, routeAutomationCreate, a.body())
}

// ReadAutomation reads an automation by id; a missing one is a 404 (IsNotFound).
func (c *Client) ReadAutomation(ctx context.Context, id string) (Automation, error) {
	return get[Automation](ctx, c, routeAutomationRead, id)
}

// ReplaceAutomation replaces an automation's definition.
func (c *Client) ReplaceAutomation(ctx context.Context, id string, a Automation) error {
	return c.do(ctx, call{route: routeAutomationReplace, args: []string{id}, body: a.body()})
}

// DeleteAutomation deletes an automation.
func (c *Client) DeleteAutomation(ctx context.Context, id string) error {
	return c.do(ctx, call{route: routeAutomationDelete, args: []string{id}})
}

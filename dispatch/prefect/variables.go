package prefect

import (
	"context"
	"time"
)

// Variable is a named JSON value stored in Prefect.
type Variable struct {
	ID    string   `json:"id,omitempty"`
	Name  string   `json:"name"`
	Value any      `json:"value"`
	Tags  []string `json:"tags"`
	// Created and Updated are set by the server; they are never sent.
	Created *time.Time `json:"created,omitempty"`
	Updated *time.Time `json:"updated,omitempty"`
}

// CreateVariable creates a variable.
func (c *Client) CreateVariable(ctx context.Context, v Variable) (Variable, error) {
	if v.Tags == nil {
		v.Tags = []string{}
	}
	return post[Variable](ctx, c, routeVariableCreate, map[string]any{"name": v.Name, "value": v.Value, "tags": v.Tags})
}

// ReadVariable reads a variable by name.
func (c *Client) ReadVariable(ctx context.Context, name string) (Variable, error) {
	return get[Variable](ctx, c, routeVariableByName, name)
}

// UpdateVariable replaces a variable's value and tags.
func (c *Client) UpdateVariable(ctx context.Context, name string, v Variable) error {
	if v.Tags == nil {
		v.Tags = []string{}
	}
	body := map[string]any{"name": v.Name, "value": v.Value, "tags": v.Tags}
	return c.do(ctx, call{route: routeVariableUpdate, args: []string{name}, body: body})
}

// DeleteVariable deletes a variable.
func (c *Client) DeleteVariable(ctx context.Context, name string) error {
	return c.do(ctx, call{route: routeVariableDelete, args: []string{name}})
}

// ReadVariableByID reads a variable by id.
func (c *Client) ReadVariableByID(ctx context.Context, id string) (Variable, error) {
	return get[Variable](ctx, c, routeVariableRead, id)
}

// UpdateVariableByID sets a variable's name, value and tags; the id stays.
func (c *Client) UpdateVariableByID(ctx context.Context, id string, v Variable) error {
	if v.Tags == nil {
		v.Tags = []string{}
	}
	body := map[string]any{"name": v.Name, "value": v.Value, "tags": v.Tags}
	return c.do(ctx, call{route: routeVariableUpdateByID, args: []string{id}, body: body})
}

// DeleteVariableByID deletes a variable by id.
func (c *Client) DeleteVariableByID(ctx context.Context, id string) error {
	return c.do(ctx, call{route: routeVariableDeleteByID, args: []string{id}})
}

// ListVariables returns every variable, paging through the server's limit.
func (c *Client) ListVariables(ctx context.Context) ([]Variable, error) {
	return pageAll(func(offset, limit int) ([]Variable, error) {
		return post[[]Variable](ctx, c, routeVariableFilter, map[string]any{"offset": offset, "limit": limit})
	})
}

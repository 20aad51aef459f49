package prefect

import "context"

// Variable is a named JSON value stored in Prefect.
type Variable struct {
	ID    string   `json:"id,omitempty"`
	Name  string   `json:"name"`
	Value any      `json:"value"`
	Tags  []string `json:"tags"`
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

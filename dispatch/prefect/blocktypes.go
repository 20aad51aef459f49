package prefect

import (
	"context"
	"net/http"
)

// BlockTypeCreate is the body of CreateBlockType; nil fields are not set.
type BlockTypeCreate struct {
	Name             string  `json:"name"`
	Slug             string  `json:"slug"`
	LogoURL          *string `json:"logo_url,omitempty"`
	DocumentationURL *string `json:"documentation_url,omitempty"`
	Description      *string `json:"description,omitempty"`
	CodeExample      *string `json:"code_example,omitempty"`
}

// BlockTypeSettings is the body of SetBlockType: every field is sent, so
// nil clears it.
type BlockTypeSettings struct {
	LogoURL          *string `json:"logo_url"`
	DocumentationURL *string `json:"documentation_url"`
	Description      *string `json:"description"`
	CodeExample      *string `json:"code_example"`
}

// CreateBlockType creates a block type. The server HTML-escapes description
// and code_example when it creates a block type (not when it updates one).
func (c *Client) CreateBlockType(ctx context.Context, in BlockTypeCreate) (BlockType, error) {
	return post[BlockType](ctx, c, routeBlockTypeCreate, in)
}

// ReadBlockTypeByID reads a block type by id (ReadBlockType reads one by
// slug).
func (c *Client) ReadBlockTypeByID(ctx context.Context, id string) (BlockType, error) {
	return get[BlockType](ctx, c, routeBlockTypeRead, id)
}

// SetBlockType sets the changeable fields of a block type.
func (c *Client) SetBlockType(ctx context.Context, id string, in BlockTypeSettings) error {
	return c.do(ctx, call{route: routeBlockTypeUpdate, args: []string{id}, body: in})
}

// DeleteBlockType deletes a block type, with its schemas and blocks.
func (c *Client) DeleteBlockType(ctx context.Context, id string) error {
	return c.do(ctx, call{route: routeBlockTypeDelete, args: []string{id}})
}

// BlockSchemaCreate is the body of CreateBlockSchema.
type BlockSchemaCreate struct {
	Fields       map[string]any `json:"fields"`
	BlockTypeID  string         `json:"block_type_id"`
	Capabilities []string       `json:"capabilities"`
	Version      string         `json:"version,omitempty"`
}

// CreateBlockSchema creates a block schema. The server identifies schemas by
// the checksum of their fields and their version: when one with the same
// checksum and version exists already, it returns that one and created is
// false.
func (c *Client) CreateBlockSchema(ctx context.Context, in BlockSchemaCreate) (out BlockSchema, created bool, err error) {
	if in.Fields == nil {
		in.Fields = map[string]any{}
	}
	if in.Capabilities == nil {
		in.Capabilities = []string{}
	}
	var status int
	err = c.do(ctx, call{route: routeBlockSchemaCreate, body: in, out: &out, status: &status})
	return out, status == http.StatusCreated, err
}

// ReadBlockSchema reads a block schema by id.
func (c *Client) ReadBlockSchema(ctx context.Context, id string) (BlockSchema, error) {
	return get[BlockSchema](ctx, c, routeBlockSchemaRead, id)
}

// DeleteBlockSchema deletes a block schema.
func (c *Client) DeleteBlockSchema(ctx context.Context, id string) error {
	return c.do(ctx, call{route: routeBlockSchemaDelete, args: []string{id}})
}

// LinkDeploymentConcurrencyLimit links a deployment to the global
// concurrency limit limitID, or unlinks it when limitID is nil. Unlinking
// leaves the limit itself in place.
func (c *Client) LinkDeploymentConcurrencyLimit(ctx context.Context, deploymentID string, limitID *string) error {
	body := map[string]any{"global_concurrency_limit_id": limitID}
	return c.do(ctx, call{route: routeDeploymentUpdate, args: []string{deploymentID}, body: body})
}

// filterAny reads the objects whose field is any of values, in pages of
// MaxPageSize values; objects that do not exist are absent from the answer.
func filterAny[T any](ctx context.Context, c *Client, r route, object, field string, values []string) ([]T, error) {
	var out []T
	for start := 0; start < len(values); start += MaxPageSize {
		page := values[start:min(start+MaxPageSize, len(values))]
		body := map[string]any{object: map[string]any{field: map[string]any{"any_": page}}, "limit": len(page)}
		got, err := post[[]T](ctx, c, r, body)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// FilterFlowsByID reads the flows with the given ids in as few requests as
// the server's page size allows.
func (c *Client) FilterFlowsByID(ctx context.Context, ids []string) ([]Flow, error) {
	return filterAny[Flow](ctx, c, routeFlowFilter, "flows", "id", ids)
}

// FilterWorkPoolsByName reads the work pools with the given names.
func (c *Client) FilterWorkPoolsByName(ctx context.Context, names []string) ([]WorkPool, error) {
	return filterAny[WorkPool](ctx, c, routeWorkPoolFilter, "work_pools", "name", names)
}

// FilterVariablesByID reads the variables with the given ids.
func (c *Client) FilterVariablesByID(ctx context.Context, ids []string) ([]Variable, error) {
	return filterAny[Variable](ctx, c, routeVariableFilter, "variables", "id", ids)
}

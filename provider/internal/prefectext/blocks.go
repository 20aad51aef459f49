package prefectext

import (
	"context"
	"net/http"
	"time"
)

// BlockType is a block type as the server returns it.
type BlockType struct {
	ID               string     `json:"id"`
	Created          *time.Time `json:"created"`
	Updated          *time.Time `json:"updated"`
	Name             string     `json:"name"`
	Slug             string     `json:"slug"`
	LogoURL          *string    `json:"logo_url"`
	DocumentationURL *string    `json:"documentation_url"`
	Description      *string    `json:"description"`
	CodeExample      *string    `json:"code_example"`
	IsProtected      bool       `json:"is_protected"`
}

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
	var out BlockType
	_, err := c.do(ctx, http.MethodPost, "/block_types/", in, &out)
	return out, err
}

// ReadBlockType reads a block type by id.
func (c *Client) ReadBlockType(ctx context.Context, id string) (BlockType, error) {
	var out BlockType
	_, err := c.do(ctx, http.MethodGet, "/block_types/"+escape(id), nil, &out)
	return out, err
}

// ReadBlockTypeBySlug reads a block type by slug.
func (c *Client) ReadBlockTypeBySlug(ctx context.Context, slug string) (BlockType, error) {
	var out BlockType
	_, err := c.do(ctx, http.MethodGet, "/block_types/slug/"+escape(slug), nil, &out)
	return out, err
}

// SetBlockType sets the changeable fields of a block type.
func (c *Client) SetBlockType(ctx context.Context, id string, in BlockTypeSettings) error {
	_, err := c.do(ctx, http.MethodPatch, "/block_types/"+escape(id), in, nil)
	return err
}

// DeleteBlockType deletes a block type, with its schemas and blocks.
func (c *Client) DeleteBlockType(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/block_types/"+escape(id), nil, nil)
	return err
}

// BlockSchema is a block schema as the server returns it.
type BlockSchema struct {
	ID           string         `json:"id"`
	Created      *time.Time     `json:"created"`
	Updated      *time.Time     `json:"updated"`
	Checksum     string         `json:"checksum"`
	Fields       map[string]any `json:"fields"`
	BlockTypeID  string         `json:"block_type_id"`
	BlockType    *BlockType     `json:"block_type"`
	Capabilities []string       `json:"capabilities"`
	Version      string         `json:"version"`
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
	status, err := c.do(ctx, http.MethodPost, "/block_schemas/", in, &out)
	return out, status == http.StatusCreated, err
}

// ReadBlockSchema reads a block schema by id.
func (c *Client) ReadBlockSchema(ctx context.Context, id string) (BlockSchema, error) {
	var out BlockSchema
	_, err := c.do(ctx, http.MethodGet, "/block_schemas/"+escape(id), nil, &out)
	return out, err
}

// DeleteBlockSchema deletes a block schema.
func (c *Client) DeleteBlockSchema(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/block_schemas/"+escape(id), nil, nil)
	return err
}

// LinkDeploymentConcurrencyLimit links a deployment to the global
// concurrency limit limitID, or unlinks it when limitID is nil. Unlinking
// leaves the limit itself in place.
func (c *Client) LinkDeploymentConcurrencyLimit(ctx context.Context, deploymentID string, limitID *string) error {
	body := map[string]any{"global_concurrency_limit_id": limitID}
	_, err := c.do(ctx, http.MethodPatch, "/deployments/"+escape(deploymentID), body, nil)
	return err
}

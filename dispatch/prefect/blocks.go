package prefect

import (
	"context"
	"fmt"
	"net/url"
)

// BlockType is a kind of block, e.g. "aws-credentials".
type BlockType struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
}

// BlockSchema is one version of a block type's fields.
type BlockSchema struct {
	ID          string         `json:"id"`
	Checksum    string         `json:"checksum"`
	BlockTypeID string         `json:"block_type_id"`
	Fields      map[string]any `json:"fields"`
	Version     string         `json:"version"`
}

// BlockDocument is a saved block: its data, of a type and schema.
type BlockDocument struct {
	ID            string         `json:"id,omitempty"`
	Name          *string        `json:"name"`
	Data          map[string]any `json:"data"`
	BlockSchemaID string         `json:"block_schema_id"`
	BlockTypeID   string         `json:"block_type_id"`
	BlockTypeName *string        `json:"block_type_name,omitempty"`
	IsAnonymous   bool           `json:"is_anonymous,omitempty"`
	// BlockSchema is sent by the server with a read document; its
	// fields.secret_fields names the paths in Data that hold secrets.
	BlockSchema *BlockSchema `json:"block_schema,omitempty"`
}

// SecretFields returns the dotted paths of the document's secret fields as
// its schema declares them ("value", "credentials.password", "headers.*").
func (d BlockDocument) SecretFields() []string {
	if d.BlockSchema == nil {
		return nil
	}
	raw, _ := d.BlockSchema.Fields["secret_fields"].([]any)
	out := make([]string, 0, len(raw))
	for _, f := range raw {
		if s, ok := f.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func includeSecrets() url.Values { return url.Values{"include_secrets": {"true"}} }

// InstallSystemBlockTypes registers Prefect's built-in block types (secret,
// json, …) on a fresh server.
func (c *Client) InstallSystemBlockTypes(ctx context.Context) error {
	return c.do(ctx, call{route: routeSystemBlockTypes})
}

// ReadBlockType reads a block type by slug.
func (c *Client) ReadBlockType(ctx context.Context, slug string) (BlockType, error) {
	return get[BlockType](ctx, c, routeBlockTypeBySlug, slug)
}

// LatestBlockSchema returns the newest schema of a block type.
func (c *Client) LatestBlockSchema(ctx context.Context, blockTypeID string) (BlockSchema, error) {
	body := map[string]any{"block_schemas": map[string]any{"block_type_id": map[string]any{"any_": []string{blockTypeID}}}, "limit": 1}
	schemas, err := post[[]BlockSchema](ctx, c, routeBlockSchemaFilter, body)
	if err != nil {
		return BlockSchema{}, err
	}
	if len(schemas) == 0 {
		return BlockSchema{}, fmt.Errorf("block type %s has no schema", blockTypeID)
	}
	return schemas[0], nil
}

// CreateBlockDocument saves a block.
func (c *Client) CreateBlockDocument(ctx context.Context, d BlockDocument) (BlockDocument, error) {
	body := map[string]any{"name": d.Name, "data": d.Data, "block_schema_id": d.BlockSchemaID,
		"block_type_id": d.BlockTypeID, "is_anonymous": d.IsAnonymous}
	return post[BlockDocument](ctx, c, routeBlockDocCreate, body)
}

// ReadBlockDocument reads a block by id with its secrets revealed.
func (c *Client) ReadBlockDocument(ctx context.Context, id string) (BlockDocument, error) {
	var out BlockDocument
	err := c.do(ctx, call{route: routeBlockDocRead, args: []string{id}, query: includeSecrets(), out: &out})
	return out, err
}

// ReadBlockDocumentByName reads a block by type slug and name with its
// secrets revealed.
func (c *Client) ReadBlockDocumentByName(ctx context.Context, typeSlug, name string) (BlockDocument, error) {
	var out BlockDocument
	err := c.do(ctx, call{route: routeBlockDocByName, args: []string{typeSlug, name}, query: includeSecrets(), out: &out})
	return out, err
}

// UpdateBlockDocument replaces a block's data (merge false) or merges into it.
func (c *Client) UpdateBlockDocument(ctx context.Context, id string, data map[string]any, merge bool) error {
	body := map[string]any{"data": data, "merge_existing_data": merge}
	return c.do(ctx, call{route: routeBlockDocUpdate, args: []string{id}, body: body})
}

// DeleteBlockDocument deletes a block.
func (c *Client) DeleteBlockDocument(ctx context.Context, id string) error {
	return c.do(ctx, call{route: routeBlockDocDelete, args: []string{id}})
}

package prefect

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// BlockType is a kind of block, e.g. "aws-credentials".
type BlockType struct {
	ID               string     `json:"id"`
	Created          *time.Time `json:"created,omitempty"`
	Updated          *time.Time `json:"updated,omitempty"`
	Name             string     `json:"name"`
	Slug             string     `json:"slug"`
	LogoURL          *string    `json:"logo_url,omitempty"`
	DocumentationURL *string    `json:"documentation_url,omitempty"`
	Description      *string    `json:"description,omitempty"`
	CodeExample      *string    `json:"code_example,omitempty"`
	IsProtected      bool       `json:"is_protected,omitempty"`
}

// BlockSchema is one version of a block type's fields.
type BlockSchema struct {
	ID           string         `json:"id"`
	Created      *time.Time     `json:"created,omitempty"`
	Updated      *time.Time     `json:"updated,omitempty"`
	Checksum     string         `json:"checksum"`
	BlockTypeID  string         `json:"block_type_id"`
	BlockType    *BlockType     `json:"block_type,omitempty"`
	Fields       map[string]any `json:"fields"`
	Capabilities []string       `json:"capabilities,omitempty"`
	Version      string         `json:"version"`
}

// BlockDocument is a saved block: its data, of a type and schema.
type BlockDocument struct {
	ID            string         `json:"id,omitempty"`
	Created       *time.Time     `json:"created,omitempty"`
	Updated       *time.Time     `json:"updated,omitempty"`
	Name          *string        `json:"name"`
	Data          map[string]any `json:"data"`
	BlockSchemaID string         `json:"block_schema_id"`
	BlockTypeID   string         `json:"block_type_id"`
	BlockTypeName *string        `json:"block_type_name,omitempty"`
	IsAnonymous   bool           `json:"is_anonymous,omitempty"`
	// BlockSchema is sent by the server with a read document; its
	// fields.secret_fields names the paths in Data that hold secrets.
	BlockSchema *BlockSchema `json:"block_schema,omitempty"`
	// BlockType is sent by the server with a read document.
	BlockType *BlockType `json:"block_type,omitempty"`
	// BlockDocumentReferences maps each top-level key of Data that was saved
	// as a reference to another block ({"$ref": {"block_document_id": …}})
	// to that block. The server sends Data with each reference replaced by
	// the referenced block's data (hydrated).
	BlockDocumentReferences map[string]BlockDocumentReference `json:"block_document_references,omitempty"`
}

// BlockDocumentReference is one entry of BlockDocument.BlockDocumentReferences.
type BlockDocumentReference struct {
	BlockDocument struct {
		ID   string  `json:"id"`
		Name *string `json:"name"`
	} `json:"block_document"`
}

// BlockDocumentUpdate is the body of UpdateBlockDocument.
type BlockDocumentUpdate struct {
	// BlockSchemaID moves the document to another schema of its block type;
	// empty leaves it unchanged.
	BlockSchemaID string `json:"block_schema_id,omitempty"`
	// Data is the new data. References to other blocks are written as
	// {"$ref": {"block_document_id": "<id>"}} at the top level.
	Data map[string]any `json:"data"`
	// MergeExistingData merges Data into the current data instead of
	// replacing it, so keys missing from Data are kept.
	MergeExistingData bool `json:"merge_existing_data"`
}

// RefKey is the key of a block reference in block document data:
// {"$ref": {"block_document_id": "<id>"}}.
const RefKey = "$ref"

// DataWithReferences returns the document's data as it was saved: every
// top-level key that references another block holds
// {"$ref": {"block_document_id": "<id>"}} again instead of that block's
// data. Data itself is not changed.
func (d BlockDocument) DataWithReferences() map[string]any {
	if len(d.BlockDocumentReferences) == 0 {
		return d.Data
	}
	out := make(map[string]any, len(d.Data))
	for k, v := range d.Data {
		out[k] = v
	}
	for k, ref := range d.BlockDocumentReferences {
		if ref.BlockDocument.ID == "" {
			continue
		}
		out[k] = map[string]any{RefKey: map[string]any{"block_document_id": ref.BlockDocument.ID}}
	}
	return out
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

// ResolveBlockSchema returns a block type by slug and its newest schema. A
// slug the server does not know yet makes it install Prefect's system block
// types once and look again, since a fresh server registers them in the
// background; a slug still unknown after that is a not-found APIError.
func (c *Client) ResolveBlockSchema(ctx context.Context, slug string) (BlockType, BlockSchema, error) {
	bt, err := c.ReadBlockType(ctx, slug)
	if IsNotFound(err) {
		if err := c.InstallSystemBlockTypes(ctx); err != nil {
			return BlockType{}, BlockSchema{}, fmt.Errorf("install system block types: %w", err)
		}
		bt, err = c.ReadBlockType(ctx, slug)
	}
	if err != nil {
		return BlockType{}, BlockSchema{}, fmt.Errorf("read block type %q: %w", slug, err)
	}
	schema, err := c.LatestBlockSchema(ctx, bt.ID)
	if err != nil {
		return BlockType{}, BlockSchema{}, fmt.Errorf("read the newest schema of block type %q: %w", slug, err)
	}
	return bt, schema, nil
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

// UpdateBlockDocument replaces a block's data, or merges into it. A secret
// sent as the server's mask ("********") keeps the stored secret.
func (c *Client) UpdateBlockDocument(ctx context.Context, id string, in BlockDocumentUpdate) error {
	if in.Data == nil {
		in.Data = map[string]any{}
	}
	return c.do(ctx, call{route: routeBlockDocUpdate, args: []string{id}, body: in})
}

// DeleteBlockDocument deletes a block.
func (c *Client) DeleteBlockDocument(ctx context.Context, id string) error {
	return c.do(ctx, call{route: routeBlockDocDelete, args: []string{id}})
}

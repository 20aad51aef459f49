package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

var (
	_ resource.ResourceWithConfigure   = (*BlockSchemaResource)(nil)
	_ resource.ResourceWithImportState = (*BlockSchemaResource)(nil)
)

// blockSchemaReferences is the key the server adds to a block schema's
// fields: the schemas of the blocks its fields refer to.
const blockSchemaReferences = "block_schema_references"

// BlockSchemaResource manages a block schema (prefect_block_schema). Block
// schemas cannot change: every configurable attribute replaces it.
type BlockSchemaResource struct {
	client *prefect.Client
}

// BlockSchemaResourceModel is the state of a prefect_block_schema.
type BlockSchemaResourceModel struct {
	cloudScope
	ID           types.String `tfsdk:"id"`
	Created      types.String `tfsdk:"created"`
	Updated      types.String `tfsdk:"updated"`
	Checksum     types.String `tfsdk:"checksum"`
	Fields       types.String `tfsdk:"fields"`
	BlockTypeID  types.String `tfsdk:"block_type_id"`
	BlockType    types.String `tfsdk:"block_type"`
	Capabilities types.List   `tfsdk:"capabilities"`
	Version      types.String `tfsdk:"version"`
}

// NewBlockSchemaResource returns the prefect_block_schema resource.
func NewBlockSchemaResource() resource.Resource { return &BlockSchemaResource{} }

// Metadata names the resource.
func (r *BlockSchemaResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_block_schema"
}

// Schema describes the resource.
func (r *BlockSchemaResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	stable := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A block schema: the fields of one version of a block type (`prefect_block_type`), as a " +
			"JSON schema. Blocks of the type are saved against its newest schema. The server cannot change a block " +
			"schema, so a change of any attribute replaces it; it identifies a schema by the checksum of its fields and " +
			"its version, so creating one that exists already (for any block type) fails with its ID to import. " +
			"Import with the block schema's ID.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Block schema ID (UUID)."),
			"created": createdAttribute(),
			"updated": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the object was last changed (RFC 3339).",
				PlanModifiers:       stable,
			},
			"checksum": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The server's checksum of `fields` (`sha256:…`), which identifies the schema with `version`.",
				PlanModifiers:       stable,
			},
			"fields": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString("{}"),
				MarkdownDescription: "The block's fields as a JSON schema object, e.g. `jsonencode({ title = \"Warehouse\", " +
					"type = \"object\", properties = { dsn = { type = \"string\" } }, secret_fields = [], " +
					"block_type_slug = \"warehouse\" })`. Compared semantically; the `block_schema_references` the server " +
					"adds is not a change. Defaults to `{}`.",
				Validators:    []validator.String{jsonattr.Object()},
				PlanModifiers: []planmodifier.String{jsonattr.StringPlan(), stringplanmodifier.RequiresReplace()},
			},
			"block_type_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "ID (UUID) of the schema's block type, e.g. `prefect_block_type.warehouse.id`.",
				Validators:          []validator.String{uuidString()},
				PlanModifiers:       replace,
			},
			"block_type": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Slug of the schema's block type.",
				PlanModifiers:       stable,
			},
			"capabilities": schema.ListAttribute{
				Optional:            true,
				Computed:            true,
				ElementType:         types.StringType,
				Default:             listdefault.StaticValue(types.ListValueMust(types.StringType, []attr.Value{})),
				MarkdownDescription: "What blocks of the schema can do, e.g. `[\"read-path\", \"write-path\"]`. Defaults to none.",
				PlanModifiers:       []planmodifier.List{listplanmodifier.RequiresReplace()},
			},
			"version": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString("non-versioned"),
				MarkdownDescription: "Version of the schema, for people. Defaults to `non-versioned`, as on the server.",
				PlanModifiers:       replace,
			},
		}),
	}
}

// Configure receives the provider's client.
func (r *BlockSchemaResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Create creates the block schema. The server answers a create of a schema
// it has (same checksum and version) with that schema, which Terraform would
// then own and delete; that is refused.
func (r *BlockSchemaResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan BlockSchemaResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	fields, err := jsonattr.DecodeObject(plan.Fields.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("fields"), "Invalid fields", err.Error())
		return
	}
	var capabilities []string
	resp.Diagnostics.Append(plan.Capabilities.ElementsAs(ctx, &capabilities, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	what := fmt.Sprintf("block schema of block type %s", plan.BlockTypeID.ValueString())
	bs, created, err := r.client.CreateBlockSchema(ctx, prefect.BlockSchemaCreate{
		Fields:       fields,
		BlockTypeID:  plan.BlockTypeID.ValueString(),
		Capabilities: capabilities,
		Version:      plan.Version.ValueString(),
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", what, err)
		return
	}
	if !created {
		resp.Diagnostics.AddError("Unable to create "+what,
			fmt.Sprintf("A block schema with these fields and version %q exists already (id %s, block type %s, checksum %s). "+
				"Import it with `terraform import <address> %s`, or change fields or version.",
				bs.Version, bs.ID, bs.BlockTypeID, bs.Checksum, bs.ID))
		return
	}
	plan.fromAPI(ctx, bs, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the block schema; one deleted outside Terraform leaves the state.
func (r *BlockSchemaResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state BlockSchemaResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	bs, err := r.client.ReadBlockSchema(ctx, state.ID.ValueString())
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", "block schema "+state.ID.ValueString(), err)
		return
	}
	state.fromAPI(ctx, bs, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update only records account_id and workspace_id (null): every other
// configurable attribute replaces the schema.
func (r *BlockSchemaResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan BlockSchemaResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the block schema; one already gone is fine.
func (r *BlockSchemaResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state BlockSchemaResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	if err := r.client.DeleteBlockSchema(ctx, state.ID.ValueString()); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", "block schema "+state.ID.ValueString(), err)
	}
}

// ImportState imports a block schema by ID.
func (r *BlockSchemaResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 1, "block schema", &resp.Diagnostics)
	if !ok {
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
}

// fromAPI copies the server's block schema into the model. fields keeps the
// prior document when it equals the server's without the
// block_schema_references the server adds.
func (m *BlockSchemaResourceModel) fromAPI(ctx context.Context, bs prefect.BlockSchema, diags *diag.Diagnostics) {
	m.ID = types.StringValue(bs.ID)
	m.Created = timePtr(bs.Created)
	m.Updated = timePtr(bs.Updated)
	m.Checksum = types.StringValue(bs.Checksum)
	m.BlockTypeID = types.StringValue(bs.BlockTypeID)
	m.BlockType = types.StringNull()
	if bs.BlockType != nil {
		m.BlockType = types.StringValue(bs.BlockType.Slug)
	}
	m.Version = types.StringValue(bs.Version)
	caps := bs.Capabilities
	if caps == nil {
		caps = []string{}
	}
	v, d := types.ListValueFrom(ctx, types.StringType, caps)
	diags.Append(d...)
	m.Capabilities = v

	server := orEmpty(bs.Fields)
	if refs, ok := server[blockSchemaReferences].(map[string]any); ok && len(refs) == 0 {
		server = copyWithout(server, blockSchemaReferences)
	}
	doc, err := jsonattr.Encode(server)
	if err != nil {
		diags.AddAttributeError(path.Root("fields"), "Unable to read block schema "+bs.ID, err.Error())
		return
	}
	if known(m.Fields) {
		if prior, err := jsonattr.DecodeObject(m.Fields.ValueString()); err == nil {
			cmp := server
			if _, kept := prior[blockSchemaReferences]; !kept {
				cmp = copyWithout(server, blockSchemaReferences)
			}
			if jsonattr.EqualValues(prior, cmp) {
				return
			}
		}
	}
	m.Fields = types.StringValue(doc)
}

// copyWithout returns m without key.
func copyWithout(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

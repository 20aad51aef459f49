package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

var (
	_ resource.ResourceWithConfigure    = (*BlockResource)(nil)
	_ resource.ResourceWithImportState  = (*BlockResource)(nil)
	_ resource.ResourceWithModifyPlan   = (*BlockResource)(nil)
	_ resource.ResourceWithUpgradeState = (*BlockResource)(nil)
)

// blockSchemaVersion is one above the prefecthq/prefect provider's (0).
const blockSchemaVersion = 1

// blockNamePattern is the server's rule for block document names.
var blockNamePattern = regexp.MustCompile(`^[a-z0-9-]+$`)

// BlockResource manages a block document (prefect_block).
type BlockResource struct {
	client *prefect.Client
}

// BlockResourceModel is the state of a prefect_block. DataWO is write-only:
// it is read from the configuration and always null in plan and state.
type BlockResourceModel struct {
	cloudScope
	ID            types.String `tfsdk:"id"`
	Created       types.String `tfsdk:"created"`
	Updated       types.String `tfsdk:"updated"`
	Name          types.String `tfsdk:"name"`
	TypeSlug      types.String `tfsdk:"type_slug"`
	Data          types.String `tfsdk:"data"`
	DataWO        types.String `tfsdk:"data_wo"`
	DataWOVersion types.Int64  `tfsdk:"data_wo_version"`
}

// NewBlockResource returns the prefect_block resource.
func NewBlockResource() resource.Resource { return &BlockResource{} }

// Metadata names the resource.
func (r *BlockResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_block"
}

// Schema describes the resource.
func (r *BlockResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	dataDesc := "The block's fields as a JSON object, e.g. `jsonencode({ value = var.token })`; which fields a type has is shown by " +
		"`prefect block type inspect <type_slug>`. A field may reference another block with " +
		"`{ \"$ref\" = { block_document_id = prefect_block.other.id } }`; the server answers with that block's data filled in, " +
		"and the provider still compares the reference, not the filled-in data. "
	resp.Schema = schema.Schema{
		Version: blockSchemaVersion,
		MarkdownDescription: "A block: named, typed configuration or secrets that flows load (`Secret.load(\"name\")`) and job templates " +
			"reference (`{{ prefect.blocks.secret.name }}`). The block type's newest schema is looked up from `type_slug`; " +
			"Prefect's built-in types are installed on the server first when it does not know the slug yet.\n\n" +
			"Changes made outside Terraform to `data` show as drift and are undone by the next apply. A block written with " +
			"the write-only `data_wo` keeps no data in state, so its drift is not detected: change `data_wo_version` to write `data_wo` again.\n\n" +
			"Import with the block's ID or `<type_slug>/<name>`.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Block ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Name of the block, unique within its type: lowercase letters, digits and dashes. " +
					"The API cannot rename a block, so a change replaces it.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators: []validator.String{stringvalidator.RegexMatches(blockNamePattern,
					"must only contain lowercase letters, digits and dashes, as Prefect requires of block names")},
			},
			"type_slug": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Slug of the block type, e.g. `secret`, `aws-credentials` or `s3-bucket` " +
					"(`prefect block type ls` lists them). A change replaces the block.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"data": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: dataDesc + "Compared as JSON, so formatting and key order do not matter. " +
					"Stored in state, secrets included (read back with `include_secrets`), so drift is detected; use `data_wo` " +
					"to keep secrets out of state. Conflicts with `data_wo`; when neither is set the block has no fields.",
				Validators:    []validator.String{jsonattr.Object(), stringvalidator.ConflictsWith(path.MatchRoot("data_wo"))},
				PlanModifiers: []planmodifier.String{jsonattr.StringPlan()},
			},
			"data_wo": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				WriteOnly: true,
				MarkdownDescription: "Write-only `data` (Terraform 1.11 and later): the same JSON object, sent to the server but never " +
					"stored in plan or state. It is written when the block is created and whenever `data_wo_version` changes. " +
					"Conflicts with `data`.",
				Validators: []validator.String{jsonattr.Object(), stringvalidator.ConflictsWith(path.MatchRoot("data"))},
			},
			"data_wo_version": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Version of `data_wo`. Terraform cannot see a change of a write-only value, " +
					"so change this number (e.g. increment it) to write the current `data_wo` to the server.",
				Validators: []validator.Int64{int64validator.AlsoRequires(path.MatchRoot("data_wo"))},
			},
		}),
	}
}

// Configure receives the provider's client.
func (r *BlockResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Create resolves the type's newest schema, saves the block and reads it back
// with its secrets, so that state holds what the server stored.
func (r *BlockResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan, config BlockResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	slug, name := plan.TypeSlug.ValueString(), plan.Name.ValueString()
	data, ok := blockPayload(plan, config, &resp.Diagnostics)
	if !ok {
		return
	}
	bt, bs, err := r.client.ResolveBlockSchema(ctx, slug)
	if err != nil {
		addBlockTypeError(&resp.Diagnostics, slug, err)
		return
	}
	created, err := r.client.CreateBlockDocument(ctx, prefect.BlockDocument{Name: &name, Data: data, BlockSchemaID: bs.ID, BlockTypeID: bt.ID})
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", blockName(slug, name), err)
		return
	}
	// The create response masks secrets; read them back.
	doc, err := r.client.ReadBlockDocument(ctx, created.ID)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", blockName(slug, name), err)
		return
	}
	plan.fromAPI(doc, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the block by id; one deleted outside Terraform leaves the
// state. The data is refreshed only when state holds it (not for data_wo).
func (r *BlockResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state BlockResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	doc, err := r.client.ReadBlockDocument(ctx, state.ID.ValueString())
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", blockName(state.TypeSlug.ValueString(), state.Name.ValueString()), err)
		return
	}
	state.fromAPI(doc, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update replaces the block's data (keys removed from the configuration are
// removed from the block) and moves it to its type's newest schema.
func (r *BlockResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, config BlockResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	id, slug, name := plan.ID.ValueString(), plan.TypeSlug.ValueString(), plan.Name.ValueString()
	data, ok := blockPayload(plan, config, &resp.Diagnostics)
	if !ok {
		return
	}
	_, bs, err := r.client.ResolveBlockSchema(ctx, slug)
	if err != nil {
		addBlockTypeError(&resp.Diagnostics, slug, err)
		return
	}
	if err := r.client.UpdateBlockDocument(ctx, id, prefect.BlockDocumentUpdate{BlockSchemaID: bs.ID, Data: data}); err != nil {
		addAPIError(&resp.Diagnostics, "update", blockName(slug, name), err)
		return
	}
	doc, err := r.client.ReadBlockDocument(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", blockName(slug, name), err)
		return
	}
	plan.fromAPI(doc, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the block; one already gone is fine.
func (r *BlockResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state BlockResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	if err := r.client.DeleteBlockDocument(ctx, state.ID.ValueString()); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", blockName(state.TypeSlug.ValueString(), state.Name.ValueString()), err)
	}
}

// ImportState imports a block by ID or by "<type_slug>/<name>". The imported
// state holds the block's data, so a configuration with `data` plans no
// change; one with `data_wo` plans one update that writes it.
func (r *BlockResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 1, "block", &resp.Diagnostics)
	if !ok {
		return
	}
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	var doc prefect.BlockDocument
	var err error
	slug, name, byName := strings.Cut(id, "/")
	switch {
	case uuid.Validate(id) == nil:
		doc, err = r.client.ReadBlockDocument(ctx, id)
	case byName && slug != "" && name != "" && !strings.Contains(name, "/"):
		doc, err = r.client.ReadBlockDocumentByName(ctx, slug, name)
	default:
		resp.Diagnostics.AddError("Invalid block import ID",
			fmt.Sprintf("Got %q; want the block's ID (UUID) or <type_slug>/<name>, e.g. terraform import prefect_block.token secret/github-token", id))
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "import", "block "+id, err)
		return
	}
	saved := doc.DataWithReferences()
	if saved == nil {
		saved = map[string]any{}
	}
	data, err := jsonattr.Encode(saved)
	if err != nil {
		resp.Diagnostics.AddError("Unable to import block "+id, err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), doc.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("data"), data)...)
}

// UpgradeState reads the state of the prefecthq/prefect provider (schema
// version 0) and of earlier releases of this provider.
func (r *BlockResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return stateUpgrades(blockSchemaVersion, "prefect_block", nil)
}

// ModifyPlan keeps the prior updated time in a plan that changes nothing else.
func (r *BlockResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	keepUpdatedWhenUnchanged(ctx, req, resp)
}

// blockPayload returns the data to send: data_wo from the configuration when
// set, else the planned data, else no fields. ok is false after adding a
// diagnostic.
func blockPayload(plan, config BlockResourceModel, diags *diag.Diagnostics) (data map[string]any, ok bool) {
	attr, raw := "data", plan.Data
	if !config.DataWO.IsNull() {
		attr, raw = "data_wo", config.DataWO
	}
	if raw.IsNull() || raw.IsUnknown() {
		return map[string]any{}, true
	}
	data, err := jsonattr.DecodeObject(raw.ValueString())
	if err != nil {
		// The value is sensitive: name the problem, never the value.
		diags.AddAttributeError(path.Root(attr), "Invalid block data", fmt.Sprintf("%s %s.", attr, err))
		return nil, false
	}
	return data, true
}

// fromAPI copies the server's block into the model. data keeps its prior
// spelling while semantically equal; a null prior data stays null (the block
// was written with data_wo, or with neither). References to other blocks are
// compared as written, not as the server fills them in, and a secret the
// server masks ("********"), or that the prior value holds masked, keeps the
// prior value.
func (m *BlockResourceModel) fromAPI(doc prefect.BlockDocument, diags *diag.Diagnostics) {
	m.ID = types.StringValue(doc.ID)
	m.Created = timePtr(doc.Created)
	m.Updated = timePtr(doc.Updated)
	if doc.Name != nil {
		m.Name = types.StringValue(*doc.Name)
	}
	if doc.BlockType != nil {
		m.TypeSlug = types.StringValue(doc.BlockType.Slug)
	}
	m.DataWO = types.StringNull()
	if m.Data.IsNull() || m.Data.IsUnknown() {
		m.Data = types.StringNull()
		return
	}
	server := doc.DataWithReferences()
	if server == nil {
		server = map[string]any{}
	}
	if prior, err := jsonattr.DecodeObject(m.Data.ValueString()); err == nil {
		keepMaskedSecrets(prior, server, doc.SecretFields())
	}
	encoded, err := jsonattr.Encode(server)
	if err != nil {
		diags.AddAttributeError(path.Root("data"), "Unable to read block data",
			fmt.Sprintf("The data of %s cannot be encoded as JSON: %s.", blockName(m.TypeSlug.ValueString(), m.Name.ValueString()), err))
		return
	}
	m.Data = jsonattr.KeepString(m.Data, encoded)
}

// keepMaskedSecrets sets each secret field of server (a dotted path from the
// block schema's secret_fields, where "*" matches any key) to its prior value
// when either side holds Prefect's mask: the server masks a secret it does
// not reveal, and keeps the stored secret when it is sent the mask.
func keepMaskedSecrets(prior, server map[string]any, secretFields []string) {
	for _, f := range secretFields {
		keepMasked(prior, server, strings.Split(f, "."))
	}
}

func keepMasked(prior, server map[string]any, path []string) {
	if len(path) == 0 || prior == nil || server == nil {
		return
	}
	keys := []string{path[0]}
	if path[0] == "*" {
		keys = keys[:0]
		for k := range server {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		p, inPrior := prior[k]
		s, inServer := server[k]
		if !inPrior || !inServer {
			continue
		}
		if len(path) == 1 {
			if isMasked(s) || isMasked(p) {
				server[k] = p
			}
			continue
		}
		pm, _ := p.(map[string]any)
		sm, _ := s.(map[string]any)
		keepMasked(pm, sm, path[1:])
	}
}

// isMasked reports whether v is a value as Prefect masks secrets: eight
// characters, at least the first four of them "*".
func isMasked(v any) bool {
	s, ok := v.(string)
	return ok && len(s) == 8 && strings.HasPrefix(s, "****")
}

// addBlockTypeError reports a block type the server does not have.
func addBlockTypeError(diags *diag.Diagnostics, slug string, err error) {
	if prefect.IsNotFound(err) {
		diags.AddAttributeError(path.Root("type_slug"), "Unknown block type",
			fmt.Sprintf("The server has no block type %q, even after installing Prefect's built-in types: %s\n\n"+
				"List the types with `prefect block type ls`; a collection's types (e.g. prefect-aws) are registered with "+
				"`prefect block register -m prefect_aws`.", slug, err))
		return
	}
	addAPIError(diags, "resolve the schema of", fmt.Sprintf("block type %q", slug), err)
}

func blockName(slug, name string) string { return fmt.Sprintf("block %s/%s", slug, name) }

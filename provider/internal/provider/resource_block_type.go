package provider

import (
	"context"
	"fmt"
	"html"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var (
	_ resource.ResourceWithConfigure   = (*BlockTypeResource)(nil)
	_ resource.ResourceWithImportState = (*BlockTypeResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*BlockTypeResource)(nil)
)

// blockTypeSlugPattern is the server's rule for block type slugs.
var blockTypeSlugPattern = regexp.MustCompile(`^[a-z0-9-]+$`)

// BlockTypeResource manages a block type (prefect_block_type).
type BlockTypeResource struct {
	client *prefect.Client
}

// BlockTypeResourceModel is the state of a prefect_block_type.
type BlockTypeResourceModel struct {
	cloudScope
	ID               types.String `tfsdk:"id"`
	Created          types.String `tfsdk:"created"`
	Updated          types.String `tfsdk:"updated"`
	Name             types.String `tfsdk:"name"`
	Slug             types.String `tfsdk:"slug"`
	LogoURL          types.String `tfsdk:"logo_url"`
	DocumentationURL types.String `tfsdk:"documentation_url"`
	Description      types.String `tfsdk:"description"`
	CodeExample      types.String `tfsdk:"code_example"`
	IsProtected      types.Bool   `tfsdk:"is_protected"`
}

// NewBlockTypeResource returns the prefect_block_type resource.
func NewBlockTypeResource() resource.Resource { return &BlockTypeResource{} }

// Metadata names the resource.
func (r *BlockTypeResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_block_type"
}

// Schema describes the resource.
func (r *BlockTypeResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	optional := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A block type: a kind of block (`prefect_block`), such as `aws-credentials`, whose fields a " +
			"`prefect_block_schema` describes. Deleting it deletes its schemas and blocks. Unset optional attributes stay " +
			"null, and the HTML escaping the server applies to `description` and `code_example` on create is not a change. " +
			"Import with the block type's ID or slug.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Block type ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Display name of the block type, unique on the server. It must not begin with " +
					"`Prefect`, which is reserved. The API cannot rename a block type, so a change replaces it.",
				Validators: []validator.String{
					stringvalidator.RegexMatches(prefectNamePattern, "must not contain / % & > or <"),
					notReservedName{},
				},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"slug": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Slug of the block type, e.g. `acme-warehouse`: lowercase letters, digits and dashes; " +
					"blocks refer to their type by it. A change replaces the block type.",
				Validators: []validator.String{stringvalidator.RegexMatches(blockTypeSlugPattern,
					"must contain only lowercase letters, numbers and dashes")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"logo_url":          optional("Web URL of the block type's logo."),
			"documentation_url": optional("Web URL of the block type's documentation."),
			"description":       optional("A short description of what the block type's blocks are for (Markdown)."),
			"code_example":      optional("A code snippet that shows a block of this type in use (Markdown)."),
			"is_protected": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether the block type is protected: Prefect's own block types are, and cannot be deleted.",
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
		}),
	}
}

// Configure receives the provider's client.
func (r *BlockTypeResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Create creates the block type.
func (r *BlockTypeResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan BlockTypeResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	what := blockTypeName(plan.Slug.ValueString())
	bt, err := r.client.CreateBlockType(ctx, prefect.BlockTypeCreate{
		Name:             plan.Name.ValueString(),
		Slug:             plan.Slug.ValueString(),
		LogoURL:          stringPtr(plan.LogoURL),
		DocumentationURL: stringPtr(plan.DocumentationURL),
		Description:      stringPtr(plan.Description),
		CodeExample:      stringPtr(plan.CodeExample),
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", what, err)
		if prefect.IsConflict(err) {
			resp.Diagnostics.AddError("Block type exists",
				fmt.Sprintf("A block type named %q or with slug %q exists already. Import it with `terraform import "+
					"<address> %s`.", plan.Name.ValueString(), plan.Slug.ValueString(), plan.Slug.ValueString()))
		}
		return
	}
	plan.fromAPI(bt)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the block type; one deleted outside Terraform leaves the state.
func (r *BlockTypeResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state BlockTypeResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	bt, err := r.client.ReadBlockTypeByID(ctx, state.ID.ValueString())
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", blockTypeName(state.Slug.ValueString()), err)
		return
	}
	state.fromAPI(bt)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update sets the four changeable fields, clearing the unset ones.
func (r *BlockTypeResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan BlockTypeResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	id, what := plan.ID.ValueString(), blockTypeName(plan.Slug.ValueString())
	err := r.client.SetBlockType(ctx, id, prefect.BlockTypeSettings{
		LogoURL:          stringPtr(plan.LogoURL),
		DocumentationURL: stringPtr(plan.DocumentationURL),
		Description:      stringPtr(plan.Description),
		CodeExample:      stringPtr(plan.CodeExample),
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "update", what, err)
		return
	}
	bt, err := r.client.ReadBlockTypeByID(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", what, err)
		return
	}
	plan.fromAPI(bt)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the block type with its schemas and blocks; one already
// gone is fine.
func (r *BlockTypeResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state BlockTypeResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	if err := r.client.DeleteBlockType(ctx, state.ID.ValueString()); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", blockTypeName(state.Slug.ValueString()), err)
	}
}

// ImportState imports a block type by ID or slug.
func (r *BlockTypeResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 1, "block type", &resp.Diagnostics)
	if !ok {
		return
	}
	if _, err := uuid.Parse(id); err == nil {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
		return
	}
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	bt, err := r.client.ReadBlockType(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "import", blockTypeName(id), err)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), bt.ID)...)
}

// ModifyPlan keeps the prior updated time in a plan that changes nothing else.
func (r *BlockTypeResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	keepUpdatedWhenUnchanged(ctx, req, resp)
}

// fromAPI copies the server's block type into the model, keeping the prior
// spelling of values the server stores in another form.
func (m *BlockTypeResourceModel) fromAPI(bt prefect.BlockType) {
	m.ID = types.StringValue(bt.ID)
	m.Created = timePtr(bt.Created)
	m.Updated = timePtr(bt.Updated)
	m.Name = types.StringValue(bt.Name)
	m.Slug = types.StringValue(bt.Slug)
	m.LogoURL = serverURL(bt.LogoURL, m.LogoURL)
	m.DocumentationURL = serverURL(bt.DocumentationURL, m.DocumentationURL)
	m.Description = serverMarkdown(bt.Description, m.Description)
	m.CodeExample = serverMarkdown(bt.CodeExample, m.CodeExample)
	m.IsProtected = types.BoolValue(bt.IsProtected)
}

// serverURL maps a URL the server stored with surrounding whitespace removed
// back to the prior value.
func serverURL(server *string, prior types.String) types.String {
	if server != nil && known(prior) && strings.TrimSpace(prior.ValueString()) == *server {
		return prior
	}
	return optionalString(server, prior)
}

// serverMarkdown maps description or code_example back to the prior value
// when the server stored it HTML-escaped, as it does when it creates a block
// type (Python's html.escape(quote=False): & < >) but not when it updates one.
// A value changed outside Terraform that is consistently escaped is
// unescaped, as Prefect's own client compares it.
func serverMarkdown(server *string, prior types.String) types.String {
	if server == nil {
		return optionalString(server, prior)
	}
	if known(prior) && (*server == prior.ValueString() || *server == escapeMarkdown(prior.ValueString())) {
		return prior
	}
	if raw := html.UnescapeString(*server); escapeMarkdown(raw) == *server {
		return optionalString(&raw, prior)
	}
	return optionalString(server, prior)
}

// escapeMarkdown is Python's html.escape(s, quote=False).
func escapeMarkdown(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// notReservedName rejects block type names the server reserves for Prefect's
// own block types.
type notReservedName struct{}

func (notReservedName) Description(context.Context) string { return "must not begin with \"Prefect\"" }

func (v notReservedName) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (notReservedName) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if known(req.ConfigValue) && strings.HasPrefix(strings.ToLower(req.ConfigValue.ValueString()), "prefect") {
		resp.Diagnostics.AddAttributeError(req.Path, "Reserved block type name",
			fmt.Sprintf("The server reserves block type names beginning with \"Prefect\" for its own block types; "+
				"choose another name than %q.", req.ConfigValue.ValueString()))
	}
}

func blockTypeName(slug string) string { return fmt.Sprintf("block type %q", slug) }

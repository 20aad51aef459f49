package provider

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var (
	_ resource.ResourceWithConfigure    = (*FlowResource)(nil)
	_ resource.ResourceWithImportState  = (*FlowResource)(nil)
	_ resource.ResourceWithModifyPlan   = (*FlowResource)(nil)
	_ resource.ResourceWithUpgradeState = (*FlowResource)(nil)
)

// flowSchemaVersion is one above the prefecthq/prefect provider's (0).
const flowSchemaVersion = 1

// FlowResource manages a flow (prefect_flow), the parent of deployments.
type FlowResource struct {
	client *prefect.Client
	cache  *readCache
	reads  *refreshReads
}

// FlowResourceModel is the state of a prefect_flow.
type FlowResourceModel struct {
	cloudScope
	ID      types.String `tfsdk:"id"`
	Created types.String `tfsdk:"created"`
	Updated types.String `tfsdk:"updated"`
	Name    types.String `tfsdk:"name"`
	Tags    types.Set    `tfsdk:"tags"`
}

// NewFlowResource returns the prefect_flow resource.
func NewFlowResource() resource.Resource { return &FlowResource{} }

// Metadata names the resource.
func (r *FlowResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_flow"
}

// Schema describes the resource.
func (r *FlowResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Version: flowSchemaVersion,
		MarkdownDescription: "A flow, the parent of deployments. Deleting it deletes its deployments. " +
			"Creating a flow whose name exists fails: import it instead, with its ID or its name.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Flow ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the flow. The API cannot rename a flow, so a change replaces it (and its deployments).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"tags": schema.SetAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				Computed:            true,
				Default:             setdefault.StaticValue(emptyStringSet()),
				MarkdownDescription: "Tags of the flow. Defaults to none.",
			},
		}),
	}
}

// Configure receives the provider's client.
func (r *FlowResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
	r.cache = readCacheFrom(req.ProviderData)
	r.reads = refreshReadsFrom(req.ProviderData)
}

// Create creates the flow. The API's create returns an existing flow of the
// same name, which Terraform would then own and delete; that is refused.
func (r *FlowResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan FlowResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	name := plan.Name.ValueString()
	switch existing, err := r.client.ReadFlowByName(ctx, name); {
	case err == nil:
		resp.Diagnostics.AddError(fmt.Sprintf("Unable to create %s", flowName(name)),
			fmt.Sprintf("A flow with this name already exists (id %s). Import it with "+
				"`terraform import <address> %s`, or choose another name.", existing.ID, existing.ID))
		return
	case !prefect.IsNotFound(err):
		addAPIError(&resp.Diagnostics, "create", flowName(name), err)
		return
	}
	tags := setStrings(ctx, plan.Tags, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	f, err := r.client.CreateFlow(ctx, name, tags)
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", flowName(name), err)
		return
	}
	r.cache.putFlow(f)
	plan.fromAPI(ctx, f, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the flow; a flow deleted outside Terraform leaves the state.
func (r *FlowResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state FlowResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	f, err := r.reads.flow(ctx, r.client, state.ID.ValueString())
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", flowName(state.Name.ValueString()), err)
		return
	}
	r.cache.putFlow(f)
	state.fromAPI(ctx, f, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update replaces the flow's tags, the only field that can change.
func (r *FlowResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan FlowResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	tags := setStrings(ctx, plan.Tags, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	id, name := plan.ID.ValueString(), plan.Name.ValueString()
	if err := r.client.UpdateFlowTags(ctx, id, tags); err != nil {
		addAPIError(&resp.Diagnostics, "update", flowName(name), err)
		return
	}
	f, err := r.client.ReadFlow(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", flowName(name), err)
		return
	}
	r.cache.putFlow(f)
	plan.fromAPI(ctx, f, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the flow and its deployments; a flow already gone is fine.
func (r *FlowResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state FlowResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	r.cache.forgetFlow(state.ID.ValueString())
	if err := r.client.DeleteFlow(ctx, state.ID.ValueString()); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", flowName(state.Name.ValueString()), err)
	}
}

// ImportState imports a flow by ID or by name.
func (r *FlowResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 1, "flow", &resp.Diagnostics)
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
	f, err := r.client.ReadFlowByName(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "import", flowName(id), err)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), f.ID)...)
}

// UpgradeState reads the state of the prefecthq/prefect provider (schema
// version 0, tags as a set) and of earlier releases of this provider.
func (r *FlowResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return stateUpgrades(flowSchemaVersion, "prefect_flow", nil)
}

// ModifyPlan keeps the prior updated time in a plan that changes nothing else.
func (r *FlowResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	keepUpdatedWhenUnchanged(ctx, req, resp)
}

// fromAPI copies the server's flow into the model.
func (m *FlowResourceModel) fromAPI(ctx context.Context, f prefect.Flow, diags *diag.Diagnostics) {
	m.ID = types.StringValue(f.ID)
	m.Created = timestamp(f.Created)
	m.Updated = timestamp(f.Updated)
	m.Name = types.StringValue(f.Name)
	m.Tags = stringSet(ctx, f.Tags, diags)
}

func flowName(name string) string { return fmt.Sprintf("flow %q", name) }

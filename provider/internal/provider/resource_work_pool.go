package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

var (
	_ resource.ResourceWithConfigure    = (*WorkPoolResource)(nil)
	_ resource.ResourceWithImportState  = (*WorkPoolResource)(nil)
	_ resource.ResourceWithModifyPlan   = (*WorkPoolResource)(nil)
	_ resource.ResourceWithUpgradeState = (*WorkPoolResource)(nil)
)

// workPoolSchemaVersion is one above the prefecthq/prefect provider's (0).
const workPoolSchemaVersion = 1

// WorkPoolResource manages a work pool (prefect_work_pool).
type WorkPoolResource struct {
	cache  *readCache
	reads  *refreshReads
	client *prefect.Client
	// planned records the templates this plan gives pools, for the
	// deployments' job variable checks.
	planned *plannedPools
}

// WorkPoolResourceModel is the state of a prefect_work_pool.
type WorkPoolResourceModel struct {
	cloudScope
	ID               types.String `tfsdk:"id"`
	Created          types.String `tfsdk:"created"`
	Updated          types.String `tfsdk:"updated"`
	Name             types.String `tfsdk:"name"`
	Type             types.String `tfsdk:"type"`
	Description      types.String `tfsdk:"description"`
	Paused           types.Bool   `tfsdk:"paused"`
	ConcurrencyLimit types.Int64  `tfsdk:"concurrency_limit"`
	DefaultQueueID   types.String `tfsdk:"default_queue_id"`
	BaseJobTemplate  types.String `tfsdk:"base_job_template"`
}

// NewWorkPoolResource returns the prefect_work_pool resource.
func NewWorkPoolResource() resource.Resource { return &WorkPoolResource{} }

// Metadata names the resource.
func (r *WorkPoolResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_work_pool"
}

// Schema describes the resource.
func (r *WorkPoolResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Version: workPoolSchemaVersion,
		MarkdownDescription: "A work pool: where deployments send their flow runs, with the base job template that " +
			"shapes each run's infrastructure. Pools of pushpool's backends can start from " +
			"`data.prefect_pushpool_base_job_templates`. Import with the pool's name.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Work pool ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the work pool. The API cannot rename a pool, so a change replaces it.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"type": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Type of the work pool, e.g. `process`, `ecs`, `cloud-run-v2`, `azure-container-instance`. " +
					"When unset, the server's default is kept. A change replaces the pool.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
			},
			"description": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Description of the work pool.",
			},
			"paused": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
				MarkdownDescription: "Whether the pool is paused; paused pools hand out no runs. Defaults to `false`.",
			},
			"concurrency_limit": schema.Int64Attribute{
				Optional:            true,
				MarkdownDescription: "Most flow runs of this pool that may run at once; unset means no limit.",
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
			},
			"default_queue_id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "ID (UUID) of the pool's `default` work queue.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"base_job_template": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "The base job template as a JSON object with `job_configuration` and `variables`. " +
					"Compared semantically: whitespace, key order and number spelling (`1.0` and `1`) never show as a diff, " +
					"so `file(\"template.json\")` works as is. When unset, the server's value is kept and not managed.",
				Validators:    []validator.String{jsonattr.Object()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), jsonattr.StringPlan()},
			},
		}),
	}
}

// Configure receives the provider's client.
func (r *WorkPoolResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
	r.planned = plannedPoolsFrom(req.ProviderData)
	r.cache = readCacheFrom(req.ProviderData)
	r.reads = refreshReadsFrom(req.ProviderData)
}

// Create creates the pool.
func (r *WorkPoolResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan WorkPoolResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	tmpl := decodeTemplate(plan.BaseJobTemplate, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	pool, err := r.client.CreateWorkPool(ctx, prefect.WorkPoolCreate{
		Name:             plan.Name.ValueString(),
		Description:      stringPtr(plan.Description),
		Type:             plan.Type.ValueString(),
		BaseJobTemplate:  tmpl,
		IsPaused:         plan.Paused.ValueBool(),
		ConcurrencyLimit: intPtr(plan.ConcurrencyLimit),
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", workPoolName(plan.Name.ValueString()), err)
		return
	}
	r.cache.putPool(pool)
	plan.fromAPI(pool, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the pool; a pool deleted outside Terraform leaves the state.
func (r *WorkPoolResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state WorkPoolResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	pool, err := r.reads.pool(ctx, r.client, state.Name.ValueString())
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", workPoolName(state.Name.ValueString()), err)
		return
	}
	r.cache.putPool(pool)
	state.fromAPI(pool, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update sets every changeable field, sending nulls for cleared ones so values
// changed outside Terraform are put back.
func (r *WorkPoolResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan WorkPoolResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	tmpl := decodeTemplate(plan.BaseJobTemplate, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	name := plan.Name.ValueString()
	err := r.client.SetWorkPool(ctx, name, prefect.WorkPoolSettings{
		Description:      stringPtr(plan.Description),
		IsPaused:         plan.Paused.ValueBool(),
		BaseJobTemplate:  tmpl,
		ConcurrencyLimit: intPtr(plan.ConcurrencyLimit),
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "update", workPoolName(name), err)
		return
	}
	pool, err := r.client.ReadWorkPool(ctx, name)
	if err != nil {
		r.cache.forgetPool(name)
		addAPIError(&resp.Diagnostics, "read", workPoolName(name), err)
		return
	}
	r.cache.putPool(pool)
	plan.fromAPI(pool, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the pool and its queues; a pool already gone is fine.
func (r *WorkPoolResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state WorkPoolResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	r.cache.forgetPool(state.Name.ValueString())
	if err := r.client.DeleteWorkPool(ctx, state.Name.ValueString()); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", workPoolName(state.Name.ValueString()), err)
	}
}

// ImportState imports a pool by name.
func (r *WorkPoolResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 1, "work pool", &resp.Diagnostics)
	if !ok {
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), id)...)
}

// UpgradeState reads the state of the prefecthq/prefect provider (schema
// version 0) and of earlier releases of this provider.
func (r *WorkPoolResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return stateUpgrades(workPoolSchemaVersion, "prefect_work_pool", func(s priorState, _ *diag.Diagnostics) {
		if s.upstream {
			s.emptyToNull("description")
		}
	})
}

// ModifyPlan keeps the prior updated time in a plan that changes nothing
// else, and records the base job template of a pool whose template the plan
// sets, for the job variable checks of the deployments planned after it.
func (r *WorkPoolResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	keepUpdatedWhenUnchanged(ctx, req, resp)
	if req.Plan.Raw.IsNull() {
		return
	}
	var name, planned, priorName, prior types.String
	resp.Diagnostics.Append(resp.Plan.GetAttribute(ctx, path.Root("name"), &name)...)
	resp.Diagnostics.Append(resp.Plan.GetAttribute(ctx, path.Root("base_job_template"), &planned)...)
	if !req.State.Raw.IsNull() {
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("name"), &priorName)...)
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("base_job_template"), &prior)...)
	}
	if resp.Diagnostics.HasError() || !known(name) {
		return
	}
	r.planned.forget(name.ValueString())
	switch {
	case planned.IsUnknown():
		r.planned.record(name.ValueString(), plannedTemplate{})
	case planned.IsNull(), priorName.Equal(name) && known(prior) && jsonattr.Equal(prior.ValueString(), planned.ValueString()):
		// The server's template stays.
	default:
		tmpl, err := jsonattr.DecodeObject(planned.ValueString())
		if err != nil {
			return // the attribute's validator reports it
		}
		r.planned.record(name.ValueString(), plannedTemplate{known: true, template: tmpl})
	}
}

// fromAPI copies the server's pool into the model, keeping the configured
// spelling of an equal base job template.
func (m *WorkPoolResourceModel) fromAPI(pool prefect.WorkPool, diags *diag.Diagnostics) {
	m.ID = types.StringValue(pool.ID)
	m.Created = timestamp(pool.Created)
	m.Updated = timestamp(pool.Updated)
	m.Name = types.StringValue(pool.Name)
	m.Type = types.StringValue(pool.Type)
	m.Description = optionalString(pool.Description, m.Description)
	m.Paused = types.BoolValue(pool.IsPaused)
	m.ConcurrencyLimit = int64Value(pool.ConcurrencyLimit)
	m.DefaultQueueID = types.StringValue(pool.DefaultQueueID)
	tmpl := pool.BaseJobTemplate
	if tmpl == nil {
		tmpl = map[string]any{}
	}
	doc, err := jsonattr.Encode(tmpl)
	if err != nil {
		diags.AddError(fmt.Sprintf("Unable to read %s", workPoolName(pool.Name)), err.Error())
		return
	}
	m.BaseJobTemplate = jsonattr.KeepString(m.BaseJobTemplate, doc)
}

// decodeTemplate decodes a planned base job template; unknown or null is nil.
func decodeTemplate(v types.String, diags *diag.Diagnostics) map[string]any {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	obj, err := jsonattr.DecodeObject(v.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("base_job_template"), "Invalid base_job_template", err.Error())
	}
	return obj
}

func workPoolName(name string) string { return fmt.Sprintf("work pool %q", name) }

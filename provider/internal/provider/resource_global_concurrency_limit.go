package provider

import (
	"context"
	"fmt"
	"regexp"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64default"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var (
	_ resource.ResourceWithConfigure    = (*GlobalConcurrencyLimitResource)(nil)
	_ resource.ResourceWithImportState  = (*GlobalConcurrencyLimitResource)(nil)
	_ resource.ResourceWithModifyPlan   = (*GlobalConcurrencyLimitResource)(nil)
	_ resource.ResourceWithUpgradeState = (*GlobalConcurrencyLimitResource)(nil)
)

// globalConcurrencyLimitSchemaVersion is one above the prefecthq/prefect provider's (0).
const globalConcurrencyLimitSchemaVersion = 1

// prefectNamePattern is the server's rule for most names: none of / % & > <.
var prefectNamePattern = regexp.MustCompile(`^[^/%&><]+$`)

// GlobalConcurrencyLimitResource manages a global concurrency limit
// (prefect_global_concurrency_limit).
type GlobalConcurrencyLimitResource struct {
	client *prefect.Client
}

// GlobalConcurrencyLimitResourceModel is the state of a
// prefect_global_concurrency_limit.
type GlobalConcurrencyLimitResourceModel struct {
	cloudScope
	ID                 types.String  `tfsdk:"id"`
	Created            types.String  `tfsdk:"created"`
	Updated            types.String  `tfsdk:"updated"`
	Name               types.String  `tfsdk:"name"`
	Limit              types.Int64   `tfsdk:"limit"`
	Active             types.Bool    `tfsdk:"active"`
	ActiveSlots        types.Int64   `tfsdk:"active_slots"`
	SlotDecayPerSecond types.Float64 `tfsdk:"slot_decay_per_second"`
}

// NewGlobalConcurrencyLimitResource returns the
// prefect_global_concurrency_limit resource.
func NewGlobalConcurrencyLimitResource() resource.Resource { return &GlobalConcurrencyLimitResource{} }

// Metadata names the resource.
func (r *GlobalConcurrencyLimitResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_global_concurrency_limit"
}

// Schema describes the resource.
func (r *GlobalConcurrencyLimitResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Version: globalConcurrencyLimitSchemaVersion,
		MarkdownDescription: "A global concurrency limit: a named pool of slots that code takes with `concurrency(\"name\")` " +
			"(or `rate_limit(\"name\")` when slots decay), shared by every flow and task on the server. " +
			"See [global concurrency limits](https://docs.prefect.io/v3/develop/global-concurrency-limits). " +
			"Prefect stores the limit of a `prefect_task_run_concurrency_limit` as the global limit `tag:<tag>`; do not manage those here. " +
			"Import with the limit's ID or name.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Global concurrency limit ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the limit, which code refers to. A change renames it in place.",
				Validators:          []validator.String{stringvalidator.RegexMatches(prefectNamePattern, "must not contain / % & > or <")},
			},
			"limit": schema.Int64Attribute{
				Required:            true,
				MarkdownDescription: "Most slots that may be taken at once.",
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
			},
			"active": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(true),
				MarkdownDescription: "Whether the limit is enforced; an inactive limit lets everything through. Defaults to `true`.",
			},
			"active_slots": schema.Int64Attribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Slots taken now. Running flows and tasks change this all the time, so leave it unset: " +
					"Terraform then reports it and never changes it. Set it (e.g. to `0`) only to reset the count, " +
					"which every apply then enforces.",
				Validators: []validator.Int64{int64validator.AtLeast(0)},
			},
			"slot_decay_per_second": schema.Float64Attribute{
				Optional: true,
				Computed: true,
				Default:  float64default.StaticFloat64(0),
				MarkdownDescription: "Slots freed per second, which makes the limit a rate limit; `0` frees slots only when " +
					"they are released. Defaults to `0`.",
				Validators: []validator.Float64{float64validator.AtLeast(0)},
			},
		}),
	}
}

// Configure receives the provider's client.
func (r *GlobalConcurrencyLimitResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Create creates the limit.
func (r *GlobalConcurrencyLimitResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan GlobalConcurrencyLimitResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	name := plan.Name.ValueString()
	l, err := r.client.CreateGlobalConcurrencyLimit(ctx, prefect.GlobalConcurrencyLimit{
		Name:               name,
		Limit:              int(plan.Limit.ValueInt64()),
		Active:             plan.Active.ValueBool(),
		ActiveSlots:        int(plan.ActiveSlots.ValueInt64()), // 0 when unset (unknown)
		SlotDecayPerSecond: plan.SlotDecayPerSecond.ValueFloat64(),
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", globalLimitName(name), err)
		return
	}
	plan.fromAPI(l)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the limit by id; one deleted outside Terraform leaves the state.
func (r *GlobalConcurrencyLimitResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state GlobalConcurrencyLimitResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	l, err := r.client.ReadGlobalConcurrencyLimit(ctx, state.ID.ValueString())
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", globalLimitName(state.Name.ValueString()), err)
		return
	}
	state.fromAPI(l)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update sets the name, limit, active flag and decay; active_slots only when
// it is configured, so slots taken by running code are left alone.
func (r *GlobalConcurrencyLimitResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan GlobalConcurrencyLimitResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	id, name := plan.ID.ValueString(), plan.Name.ValueString()
	in := prefect.GlobalConcurrencyLimitUpdate{
		Name:               &name,
		Limit:              intPtr(plan.Limit),
		Active:             new(plan.Active.ValueBool()),
		ActiveSlots:        intPtr(plan.ActiveSlots),
		SlotDecayPerSecond: new(plan.SlotDecayPerSecond.ValueFloat64()),
	}
	if err := r.client.UpdateGlobalConcurrencyLimit(ctx, id, in); err != nil {
		addAPIError(&resp.Diagnostics, "update", globalLimitName(name), err)
		return
	}
	l, err := r.client.ReadGlobalConcurrencyLimit(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", globalLimitName(name), err)
		return
	}
	plan.fromAPI(l)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the limit; one already gone is fine.
func (r *GlobalConcurrencyLimitResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state GlobalConcurrencyLimitResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	if err := r.client.DeleteGlobalConcurrencyLimit(ctx, state.ID.ValueString()); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", globalLimitName(state.Name.ValueString()), err)
	}
}

// ImportState imports a limit by ID or by name.
func (r *GlobalConcurrencyLimitResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 1, "global concurrency limit", &resp.Diagnostics)
	if !ok {
		return
	}
	if uuid.Validate(id) == nil {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
		return
	}
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	l, err := r.client.ReadGlobalConcurrencyLimit(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "import", globalLimitName(id), err)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), l.ID)...)
}

// UpgradeState reads the state of the prefecthq/prefect provider (schema
// version 0) and of earlier releases of this provider.
func (r *GlobalConcurrencyLimitResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return stateUpgrades(globalConcurrencyLimitSchemaVersion, "prefect_global_concurrency_limit", nil)
}

// ModifyPlan keeps the prior updated time in a plan that changes nothing else.
func (r *GlobalConcurrencyLimitResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	keepUpdatedWhenUnchanged(ctx, req, resp)
}

// fromAPI copies the server's limit into the model.
func (m *GlobalConcurrencyLimitResourceModel) fromAPI(l prefect.GlobalConcurrencyLimit) {
	m.ID = types.StringValue(l.ID)
	m.Created = timePtr(l.Created)
	m.Updated = timePtr(l.Updated)
	m.Name = types.StringValue(l.Name)
	m.Limit = types.Int64Value(int64(l.Limit))
	m.Active = types.BoolValue(l.Active)
	m.ActiveSlots = types.Int64Value(int64(l.ActiveSlots))
	m.SlotDecayPerSecond = types.Float64Value(l.SlotDecayPerSecond)
}

func globalLimitName(name string) string { return fmt.Sprintf("global concurrency limit %q", name) }

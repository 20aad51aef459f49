package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var (
	_ resource.ResourceWithConfigure    = (*WorkQueueResource)(nil)
	_ resource.ResourceWithImportState  = (*WorkQueueResource)(nil)
	_ resource.ResourceWithModifyPlan   = (*WorkQueueResource)(nil)
	_ resource.ResourceWithUpgradeState = (*WorkQueueResource)(nil)
)

// workQueueSchemaVersion is one above the prefecthq/prefect provider's (0).
const workQueueSchemaVersion = 1

// WorkQueueResource manages a queue of a work pool (prefect_work_queue).
type WorkQueueResource struct {
	client *prefect.Client
}

// WorkQueueResourceModel is the state of a prefect_work_queue.
type WorkQueueResourceModel struct {
	cloudScope
	ID               types.String `tfsdk:"id"`
	Created          types.String `tfsdk:"created"`
	Updated          types.String `tfsdk:"updated"`
	Name             types.String `tfsdk:"name"`
	WorkPoolName     types.String `tfsdk:"work_pool_name"`
	Description      types.String `tfsdk:"description"`
	IsPaused         types.Bool   `tfsdk:"is_paused"`
	ConcurrencyLimit types.Int64  `tfsdk:"concurrency_limit"`
	Priority         types.Int64  `tfsdk:"priority"`
}

// NewWorkQueueResource returns the prefect_work_queue resource.
func NewWorkQueueResource() resource.Resource { return &WorkQueueResource{} }

// Metadata names the resource.
func (r *WorkQueueResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_work_queue"
}

// Schema describes the resource.
func (r *WorkQueueResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Version: workQueueSchemaVersion,
		MarkdownDescription: "A work queue inside a work pool; queues order and limit a pool's runs by priority. " +
			"Every pool has a `default` queue already: import it rather than creating it. " +
			"Import with `<work_pool_name>,<queue_name>`.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Work queue ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the queue, unique in its pool. A change renames the queue in place.",
			},
			"work_pool_name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the pool the queue belongs to. A change replaces the queue.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"description": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Description of the queue.",
			},
			"is_paused": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
				MarkdownDescription: "Whether the queue is paused. Defaults to `false`.",
			},
			"concurrency_limit": schema.Int64Attribute{
				Optional:            true,
				MarkdownDescription: "Most flow runs of this queue that may run at once; unset means no limit.",
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
			},
			"priority": schema.Int64Attribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Priority of the queue in its pool; 1 is served first. " +
					"When unset, the server gives the next free priority and keeps it.",
				Validators:    []validator.Int64{int64validator.AtLeast(1)},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
		}),
	}
}

// Configure receives the provider's client.
func (r *WorkQueueResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Create creates the queue.
func (r *WorkQueueResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan WorkQueueResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	pool, name := plan.WorkPoolName.ValueString(), plan.Name.ValueString()
	q, err := r.client.CreateWorkQueue(ctx, pool, prefect.WorkQueueCreate{
		Name:             name,
		Description:      stringPtr(plan.Description),
		IsPaused:         plan.IsPaused.ValueBool(),
		ConcurrencyLimit: intPtr(plan.ConcurrencyLimit),
		Priority:         intPtr(plan.Priority),
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", workQueueName(pool, name), err)
		return
	}
	plan.fromAPI(q)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the queue; a queue deleted outside Terraform leaves the state.
func (r *WorkQueueResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state WorkQueueResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	pool, name := state.WorkPoolName.ValueString(), state.Name.ValueString()
	q, err := r.client.ReadWorkQueue(ctx, pool, name)
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", workQueueName(pool, name), err)
		return
	}
	state.fromAPI(q)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update renames and sets every changeable field, clearing the ones removed
// from the configuration.
func (r *WorkQueueResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state WorkQueueResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	pool, oldName, newName := plan.WorkPoolName.ValueString(), state.Name.ValueString(), plan.Name.ValueString()
	settings := prefect.WorkQueueSettings{
		Description:      plan.Description.ValueString(),
		IsPaused:         plan.IsPaused.ValueBool(),
		ConcurrencyLimit: intPtr(plan.ConcurrencyLimit),
		Priority:         intPtr(plan.Priority),
	}
	if newName != oldName {
		settings.Name = &newName
	}
	if err := r.client.SetWorkQueue(ctx, pool, oldName, settings); err != nil {
		addAPIError(&resp.Diagnostics, "update", workQueueName(pool, oldName), err)
		return
	}
	q, err := r.client.ReadWorkQueue(ctx, pool, newName)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", workQueueName(pool, newName), err)
		return
	}
	plan.fromAPI(q)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the queue; a queue already gone is fine.
func (r *WorkQueueResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state WorkQueueResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	pool, name := state.WorkPoolName.ValueString(), state.Name.ValueString()
	if err := r.client.DeleteWorkQueue(ctx, pool, name); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", workQueueName(pool, name), err)
	}
}

// ImportState imports a queue from "<work_pool_name>,<queue_name>".
func (r *WorkQueueResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 2, "work queue", &resp.Diagnostics)
	if !ok {
		return
	}
	pool, name, ok := strings.Cut(id, ",")
	if !ok || pool == "" || name == "" || strings.Contains(name, ",") {
		resp.Diagnostics.AddError("Invalid work queue import ID",
			fmt.Sprintf("Got %q; want <work_pool_name>,<queue_name>, e.g. terraform import prefect_work_queue.q my-pool,critical", id))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("work_pool_name"), pool)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
}

// UpgradeState reads the state of the prefecthq/prefect provider (schema
// version 0), which stores "" for a queue without a description, and of
// earlier releases of this provider.
func (r *WorkQueueResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return stateUpgrades(workQueueSchemaVersion, "prefect_work_queue", func(s priorState, _ *diag.Diagnostics) {
		if s.upstream {
			s.emptyToNull("description")
		}
	})
}

// ModifyPlan keeps the prior updated time in a plan that changes nothing else.
func (r *WorkQueueResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	keepUpdatedWhenUnchanged(ctx, req, resp)
}

// fromAPI copies the server's queue into the model.
func (m *WorkQueueResourceModel) fromAPI(q prefect.WorkQueue) {
	m.ID = types.StringValue(q.ID)
	m.Created = timestamp(q.Created)
	m.Updated = timestamp(q.Updated)
	m.Name = types.StringValue(q.Name)
	m.WorkPoolName = types.StringValue(q.WorkPoolName)
	m.Description = optionalString(q.Description, m.Description)
	m.IsPaused = types.BoolValue(q.IsPaused)
	m.ConcurrencyLimit = int64Value(q.ConcurrencyLimit)
	m.Priority = types.Int64Value(int64(q.Priority))
}

func workQueueName(pool, name string) string {
	return fmt.Sprintf("work queue %q of work pool %q", name, pool)
}

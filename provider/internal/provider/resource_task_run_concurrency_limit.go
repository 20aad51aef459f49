package provider

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var (
	_ resource.ResourceWithConfigure    = (*TaskRunConcurrencyLimitResource)(nil)
	_ resource.ResourceWithImportState  = (*TaskRunConcurrencyLimitResource)(nil)
	_ resource.ResourceWithModifyPlan   = (*TaskRunConcurrencyLimitResource)(nil)
	_ resource.ResourceWithUpgradeState = (*TaskRunConcurrencyLimitResource)(nil)
)

// taskRunConcurrencyLimitSchemaVersion is one above the prefecthq/prefect provider's (0).
const taskRunConcurrencyLimitSchemaVersion = 1

// TaskRunConcurrencyLimitResource manages the concurrency limit of a task
// run tag (prefect_task_run_concurrency_limit).
type TaskRunConcurrencyLimitResource struct {
	client *prefect.Client
}

// TaskRunConcurrencyLimitResourceModel is the state of a
// prefect_task_run_concurrency_limit.
type TaskRunConcurrencyLimitResourceModel struct {
	cloudScope
	ID               types.String `tfsdk:"id"`
	Created          types.String `tfsdk:"created"`
	Updated          types.String `tfsdk:"updated"`
	Tag              types.String `tfsdk:"tag"`
	ConcurrencyLimit types.Int64  `tfsdk:"concurrency_limit"`
}

// NewTaskRunConcurrencyLimitResource returns the
// prefect_task_run_concurrency_limit resource.
func NewTaskRunConcurrencyLimitResource() resource.Resource {
	return &TaskRunConcurrencyLimitResource{}
}

// Metadata names the resource.
func (r *TaskRunConcurrencyLimitResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_task_run_concurrency_limit"
}

// Schema describes the resource.
func (r *TaskRunConcurrencyLimitResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Version: taskRunConcurrencyLimitSchemaVersion,
		MarkdownDescription: "A task run concurrency limit: at most `concurrency_limit` task runs with the tag run at once " +
			"(`@task(tags=[\"database\"])`). See [tag-based concurrency limits](https://docs.prefect.io/v3/concepts/tag-based-concurrency-limits). " +
			"Prefect 3 stores it as the global concurrency limit `tag:<tag>`. Import with the limit's ID or its tag.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Task run concurrency limit ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"tag": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The task run tag the limit applies to. A change replaces the limit.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.RegexMatches(prefectNamePattern, "must not contain / % & > or <")},
			},
			"concurrency_limit": schema.Int64Attribute{
				Required: true,
				MarkdownDescription: "Most task runs with the tag that may run at once; `0` holds them all. A change is made in place " +
					"(the API sets the limit of an existing tag), so the slots of running tasks are kept.",
				Validators: []validator.Int64{int64validator.AtLeast(0)},
			},
		}),
	}
}

// Configure receives the provider's client.
func (r *TaskRunConcurrencyLimitResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Create creates the limit. The API's create sets the limit of a tag that
// already has one, which Terraform would then own and delete; that is refused.
func (r *TaskRunConcurrencyLimitResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan TaskRunConcurrencyLimitResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	tag := plan.Tag.ValueString()
	existing, err := r.client.ReadTaskRunConcurrencyLimit(ctx, tag)
	switch {
	case err == nil:
		resp.Diagnostics.AddError("Unable to create "+taskLimitName(tag),
			fmt.Sprintf("The tag already has a concurrency limit (ID %s, limit %d). Import it with "+
				"`terraform import <address> %s`, or remove it first.", existing.ID, existing.ConcurrencyLimit, tag))
		return
	case !prefect.IsNotFound(err):
		addAPIError(&resp.Diagnostics, "read", taskLimitName(tag), err)
		return
	}
	l, err := r.client.CreateTaskRunConcurrencyLimit(ctx, prefect.TaskRunConcurrencyLimit{Tag: tag, ConcurrencyLimit: int(plan.ConcurrencyLimit.ValueInt64())})
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", taskLimitName(tag), err)
		return
	}
	plan.fromAPI(l)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the limit by id; one deleted outside Terraform leaves the state.
func (r *TaskRunConcurrencyLimitResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state TaskRunConcurrencyLimitResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	l, err := r.client.ReadTaskRunConcurrencyLimitByID(ctx, state.ID.ValueString())
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", taskLimitName(state.Tag.ValueString()), err)
		return
	}
	state.fromAPI(l)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update sets the limit of the tag; the ID and the slots in use stay.
func (r *TaskRunConcurrencyLimitResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan TaskRunConcurrencyLimitResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	tag := plan.Tag.ValueString()
	l, err := r.client.CreateTaskRunConcurrencyLimit(ctx, prefect.TaskRunConcurrencyLimit{Tag: tag, ConcurrencyLimit: int(plan.ConcurrencyLimit.ValueInt64())})
	if err != nil {
		addAPIError(&resp.Diagnostics, "update", taskLimitName(tag), err)
		return
	}
	if l.ID != plan.ID.ValueString() {
		resp.Diagnostics.AddError("Unable to update "+taskLimitName(tag),
			fmt.Sprintf("The limit was deleted outside Terraform and created again as %s. Run terraform apply again "+
				"after `terraform state rm` and `terraform import <address> %s`.", l.ID, tag))
		return
	}
	plan.fromAPI(l)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the limit; the server revokes the slots its task runs hold.
// One already gone is fine.
func (r *TaskRunConcurrencyLimitResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state TaskRunConcurrencyLimitResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	if err := r.client.DeleteTaskRunConcurrencyLimitByID(ctx, state.ID.ValueString()); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", taskLimitName(state.Tag.ValueString()), err)
	}
}

// ImportState imports a limit by ID or by tag.
func (r *TaskRunConcurrencyLimitResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 1, "task run concurrency limit", &resp.Diagnostics)
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
	l, err := r.client.ReadTaskRunConcurrencyLimit(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "import", taskLimitName(id), err)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), l.ID)...)
}

// UpgradeState reads the state of the prefecthq/prefect provider (schema
// version 0) and of earlier releases of this provider.
func (r *TaskRunConcurrencyLimitResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return stateUpgrades(taskRunConcurrencyLimitSchemaVersion, "prefect_task_run_concurrency_limit", nil)
}

// ModifyPlan keeps the prior updated time in a plan that changes nothing else.
func (r *TaskRunConcurrencyLimitResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	keepUpdatedWhenUnchanged(ctx, req, resp)
}

// fromAPI copies the server's limit into the model.
func (m *TaskRunConcurrencyLimitResourceModel) fromAPI(l prefect.TaskRunConcurrencyLimit) {
	m.ID = types.StringValue(l.ID)
	m.Created = timePtr(l.Created)
	m.Updated = timePtr(l.Updated)
	m.Tag = types.StringValue(l.Tag)
	m.ConcurrencyLimit = types.Int64Value(int64(l.ConcurrencyLimit))
}

func taskLimitName(tag string) string {
	return fmt.Sprintf("task run concurrency limit for tag %q", tag)
}

package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/dispatch/template"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

var (
	_ resource.ResourceWithConfigure      = (*DeploymentResource)(nil)
	_ resource.ResourceWithImportState    = (*DeploymentResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*DeploymentResource)(nil)
	_ resource.ResourceWithValidateConfig = (*DeploymentResource)(nil)
	_ resource.ResourceWithUpgradeState   = (*DeploymentResource)(nil)
)

// deploymentSchemaVersion is one above the prefecthq/prefect provider's (0).
const deploymentSchemaVersion = 1

// DeploymentResource manages a deployment (prefect_deployment).
type DeploymentResource struct {
	client *prefect.Client
	cache  *readCache
	reads  *refreshReads
	// planned holds the templates this plan gives work pools.
	planned *plannedPools
}

// DeploymentResourceModel is the state of a prefect_deployment.
type DeploymentResourceModel struct {
	cloudScope
	ID                     types.String                `tfsdk:"id"`
	Created                types.String                `tfsdk:"created"`
	Updated                types.String                `tfsdk:"updated"`
	Name                   types.String                `tfsdk:"name"`
	FlowID                 types.String                `tfsdk:"flow_id"`
	Entrypoint             types.String                `tfsdk:"entrypoint"`
	Path                   types.String                `tfsdk:"path"`
	Version                types.String                `tfsdk:"version"`
	Description            types.String                `tfsdk:"description"`
	Tags                   types.Set                   `tfsdk:"tags"`
	Paused                 types.Bool                  `tfsdk:"paused"`
	WorkPoolName           types.String                `tfsdk:"work_pool_name"`
	WorkQueueName          types.String                `tfsdk:"work_queue_name"`
	JobVariables           types.String                `tfsdk:"job_variables"`
	Parameters             types.String                `tfsdk:"parameters"`
	ParameterOpenAPISchema types.String                `tfsdk:"parameter_openapi_schema"`
	EnforceParameterSchema types.Bool                  `tfsdk:"enforce_parameter_schema"`
	PullSteps              []DeploymentPullStepModel   `tfsdk:"pull_steps"`
	ConcurrencyLimit       types.Int64                 `tfsdk:"concurrency_limit"`
	ConcurrencyOptions     *DeploymentConcurrencyModel `tfsdk:"concurrency_options"`
	GlobalConcurrencyLimit types.String                `tfsdk:"global_concurrency_limit_id"`
	StorageDocumentID      types.String                `tfsdk:"storage_document_id"`
}

// DeploymentConcurrencyModel is the concurrency_options block.
type DeploymentConcurrencyModel struct {
	CollisionStrategy types.String `tfsdk:"collision_strategy"`
}

// DeploymentPullStepModel is one pull step. Which fields apply depends on
// its type; pullStepKinds lists them.
type DeploymentPullStepModel struct {
	Type              types.String `tfsdk:"type"`
	Credentials       types.String `tfsdk:"credentials"`
	Requires          types.String `tfsdk:"requires"`
	Directory         types.String `tfsdk:"directory"`
	Script            types.String `tfsdk:"script"`
	Env               types.Map    `tfsdk:"env"`
	StreamOutput      types.Bool   `tfsdk:"stream_output"`
	ExpandEnvVars     types.Bool   `tfsdk:"expand_env_vars"`
	RequirementsFile  types.String `tfsdk:"requirements_file"`
	Repository        types.String `tfsdk:"repository"`
	Branch            types.String `tfsdk:"branch"`
	AccessToken       types.String `tfsdk:"access_token"`
	IncludeSubmodules types.Bool   `tfsdk:"include_submodules"`
	Bucket            types.String `tfsdk:"bucket"`
	Container         types.String `tfsdk:"container"`
	Folder            types.String `tfsdk:"folder"`
}

// NewDeploymentResource returns the prefect_deployment resource.
func NewDeploymentResource() resource.Resource { return &DeploymentResource{} }

// Metadata names the resource.
func (r *DeploymentResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_deployment"
}

// Schema describes the resource.
func (r *DeploymentResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	optional := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		Version: deploymentSchemaVersion,
		MarkdownDescription: "A deployment: a flow with the settings a run of it needs (where its code is, which work pool " +
			"runs it, with which job variables and parameters). Schedules are separate `prefect_deployment_schedule` " +
			"resources. `terraform plan` checks `job_variables` against the work pool's variables schema and renders " +
			"a job from them, as the pushpool dispatcher does, so a wrong variable fails the plan instead of the first run. " +
			"Import with the deployment's ID or `<flow_name>/<deployment_name>`.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Deployment ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the deployment, unique per flow. The API cannot rename a deployment, so a change replaces it.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"flow_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "ID (UUID) of the deployment's flow, e.g. `prefect_flow.etl.id`. A change replaces the deployment.",
				Validators:          []validator.String{uuidString()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"entrypoint":  optional("Where the flow function is, relative to `path`, e.g. `flows/etl.py:nightly`."),
			"path":        optional("The working directory of the flow's code, relative to its storage or absolute."),
			"version":     optional("A version of the deployment, for people."),
			"description": optional("Description of the deployment."),
			"tags": schema.SetAttribute{
				Optional:            true,
				Computed:            true,
				ElementType:         types.StringType,
				Default:             setdefault.StaticValue(types.SetValueMust(types.StringType, []attr.Value{})),
				MarkdownDescription: "Tags of the deployment. Defaults to none.",
			},
			"paused": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
				MarkdownDescription: "Whether the deployment is paused; a paused deployment's schedules make no runs. Defaults to `false`.",
			},
			"work_pool_name": optional("Name of the work pool that runs the deployment's flow runs. Its base job template's " +
				"variables schema is what `job_variables` is checked against at plan time."),
			"work_queue_name": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Name of the work queue in the work pool; the server creates it if it does not exist. " +
					"When unset, the pool's default queue (`default`).",
			},
			"job_variables": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString("{}"),
				MarkdownDescription: "Job variables as a JSON object: overrides of the work pool's variables for every run, " +
					"e.g. `jsonencode({ cpu = 1024, env = { STAGE = \"prod\" } })`. Compared semantically. When `work_pool_name` " +
					"is known, `terraform plan` validates them against the pool's variables schema as the Prefect server does " +
					"(variables the schema requires may be left to flow runs) and renders a job from them as the pushpool " +
					"dispatcher does; a variable of the wrong type, or one the schema does not allow, fails the plan. " +
					"When the same plan changes the pool's base job template (and the pool is referred to as " +
					"`prefect_work_pool.<name>.name`), the check uses the planned template, and leaves a template known only " +
					"after apply to the server. A pool without a variables schema (such as one created without a base job " +
					"template) checks nothing, as on the server. Defaults to `{}`.",
				Validators:    []validator.String{jsonattr.Object()},
				PlanModifiers: []planmodifier.String{jsonattr.StringPlan()},
			},
			"parameters": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString("{}"),
				MarkdownDescription: "Parameters of the flow runs as a JSON object. Compared semantically and tolerant of what " +
					"the server fills in: a value written as a Prefect template (`{\"__prefect_kind\": ...}`) matches the " +
					"value the server resolves it to, and a parameter the server adds with its default from " +
					"`parameter_openapi_schema` is not a change. Defaults to `{}`.",
				Validators:    []validator.String{jsonattr.Object()},
				PlanModifiers: []planmodifier.String{parametersPlan{}},
			},
			"parameter_openapi_schema": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "The JSON schema of the flow's parameters, as `prefect deploy` records it. Compared " +
					"semantically; `{}` and the `{\"type\": \"object\", \"properties\": {}}` the server stores for it are equal. " +
					"When unset, the server's value is kept and not managed.",
				Validators:    []validator.String{jsonattr.Object()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), parameterSchemaPlan{}},
			},
			"enforce_parameter_schema": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(true),
				MarkdownDescription: "Whether the server checks flow run parameters against `parameter_openapi_schema`. Defaults to `true`.",
			},
			"pull_steps": pullStepsAttribute(),
			"concurrency_limit": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Most flow runs of the deployment that may run at once; unset means no limit. The server " +
					"keeps it as a global concurrency limit named `deployment:<id>`.",
				Validators: []validator.Int64{
					int64validator.AtLeast(1),
					int64validator.ConflictsWith(path.MatchRoot("global_concurrency_limit_id")),
				},
			},
			"global_concurrency_limit_id": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "ID (UUID) of a global concurrency limit the deployment's flow runs take a slot of, " +
					"e.g. `prefect_global_concurrency_limit.etl.id`; several deployments may share it. Unsetting it unlinks " +
					"the limit and leaves it in place. Conflicts with `concurrency_limit`, the deployment's own limit.",
				Validators: []validator.String{uuidString()},
			},
			"concurrency_options": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "What happens to a flow run that finds `concurrency_limit` reached.",
				Attributes: map[string]schema.Attribute{
					"collision_strategy": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "`ENQUEUE` (wait for a free slot) or `CANCEL_NEW` (cancel the new run).",
						Validators:          []validator.String{stringvalidator.OneOf("ENQUEUE", "CANCEL_NEW")},
					},
				},
			},
			"storage_document_id": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "ID (UUID) of a block document holding the flow's code storage.",
				Validators:          []validator.String{uuidString()},
			},
		}),
	}
}

// Configure receives the provider's client.
func (r *DeploymentResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
	r.cache = readCacheFrom(req.ProviderData)
	r.reads = refreshReadsFrom(req.ProviderData)
	r.planned = plannedPoolsFrom(req.ProviderData)
}

// Create creates the deployment. The API would silently take over a
// deployment of the same flow and name, so that is refused with the import
// command instead.
func (r *DeploymentResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan DeploymentResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	in := plan.settings(ctx, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	name, flowID := plan.Name.ValueString(), plan.FlowID.ValueString()
	what := deploymentName(name)
	flow, err := r.cache.flow(flowID, func() (prefect.Flow, error) { return r.client.ReadFlow(ctx, flowID) })
	if err != nil {
		if prefect.IsNotFound(err) {
			resp.Diagnostics.AddAttributeError(path.Root("flow_id"), fmt.Sprintf("Unable to create %s", what),
				fmt.Sprintf("Flow %s does not exist. Set flow_id to the id of an existing flow, e.g. prefect_flow.<name>.id.", flowID))
			return
		}
		addAPIError(&resp.Diagnostics, "read the flow of", what, err)
		return
	}
	switch existing, err := r.client.ReadDeploymentByName(ctx, flow.Name, name); {
	case err == nil:
		resp.Diagnostics.AddError(fmt.Sprintf("Unable to create %s", what),
			fmt.Sprintf("Flow %q already has a deployment %q (id %s). Import it with `terraform import <address> %s` "+
				"or choose another name.", flow.Name, name, existing.ID, existing.ID))
		return
	case !prefect.IsNotFound(err):
		addAPIError(&resp.Diagnostics, "look for an existing", what, err)
		return
	}
	dep, err := r.client.CreateDeployment(ctx, prefect.DeploymentCreate{
		Name:                   name,
		FlowID:                 flowID,
		Paused:                 in.Paused,
		ConcurrencyLimit:       in.ConcurrencyLimit,
		ConcurrencyOptions:     in.ConcurrencyOptions,
		EnforceParameterSchema: &in.EnforceParameterSchema,
		ParameterOpenAPISchema: in.ParameterOpenAPISchema,
		Parameters:             in.Parameters,
		Tags:                   in.Tags,
		PullSteps:              in.PullSteps,
		WorkQueueName:          derefString(in.WorkQueueName),
		WorkPoolName:           derefString(in.WorkPoolName),
		StorageDocumentID:      in.StorageDocumentID,
		Description:            in.Description,
		Path:                   in.Path,
		Version:                in.Version,
		Entrypoint:             in.Entrypoint,
		JobVariables:           in.JobVariables,
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", what, err)
		return
	}
	if limitID := stringPtr(plan.GlobalConcurrencyLimit); limitID != nil {
		// Recorded in the state first, so a failed link is retried by the
		// next apply instead of leaving a deployment Terraform forgot.
		// global_concurrency_limit_id is null until the link is made.
		plan.fromAPI(ctx, dep, &resp.Diagnostics)
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		if resp.Diagnostics.HasError() {
			return
		}
		if dep, err = r.linkConcurrencyLimit(ctx, dep.ID, limitID, what); err != nil {
			addAPIError(&resp.Diagnostics, "link the global concurrency limit "+*limitID+" to", what, err)
			return
		}
	}
	r.cache.putDeployment(dep)
	plan.fromAPI(ctx, dep, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the deployment; one deleted outside Terraform leaves the state.
func (r *DeploymentResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state DeploymentResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	dep, err := r.reads.deployment(ctx, r.client, state.ID.ValueString())
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", deploymentName(state.Name.ValueString()), err)
		return
	}
	r.cache.putDeployment(dep)
	state.fromAPI(ctx, dep, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update sets every changeable field, sending nulls for cleared ones so values
// changed outside Terraform are put back. Schedules are left alone.
func (r *DeploymentResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state DeploymentResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	in := plan.settings(ctx, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	// Only the deployment's own limit is cleared: null would delete a global
	// limit linked by id too.
	in.SetConcurrencyLimit = in.ConcurrencyLimit != nil || !state.ConcurrencyLimit.IsNull()
	id, what := plan.ID.ValueString(), deploymentName(plan.Name.ValueString())
	oldLimit, newLimit := stringPtr(state.GlobalConcurrencyLimit), stringPtr(plan.GlobalConcurrencyLimit)
	relink := derefString(oldLimit) != derefString(newLimit)
	if relink && oldLimit != nil {
		// Unlinked first: the server would otherwise set a concurrency_limit
		// on the linked global limit, which other deployments may share.
		if _, err := r.linkConcurrencyLimit(ctx, id, nil, what); err != nil {
			addAPIError(&resp.Diagnostics, "unlink the global concurrency limit "+*oldLimit+" from", what, err)
			return
		}
	}
	if err := r.client.SetDeployment(ctx, id, in); err != nil {
		addAPIError(&resp.Diagnostics, "update", what, err)
		return
	}
	var dep prefect.Deployment
	var err error
	if relink && newLimit != nil {
		dep, err = r.linkConcurrencyLimit(ctx, id, newLimit, what)
		if err != nil {
			addAPIError(&resp.Diagnostics, "link the global concurrency limit "+*newLimit+" to", what, err)
			return
		}
	} else if dep, err = r.client.ReadDeployment(ctx, id); err != nil {
		addAPIError(&resp.Diagnostics, "read", what, err)
		return
	}
	r.cache.putDeployment(dep)
	plan.fromAPI(ctx, dep, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the deployment and its schedules; one already gone is fine.
func (r *DeploymentResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state DeploymentResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	r.cache.forgetDeployment(state.ID.ValueString())
	if err := r.client.DeleteDeployment(ctx, state.ID.ValueString()); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", deploymentName(state.Name.ValueString()), err)
	}
}

// ImportState imports a deployment by ID or by "<flow_name>/<deployment_name>".
func (r *DeploymentResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 1, "deployment", &resp.Diagnostics)
	if !ok {
		return
	}
	if _, err := uuid.Parse(id); err == nil {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
		return
	}
	flowName, name, ok := strings.Cut(id, "/")
	if !ok || flowName == "" || name == "" {
		resp.Diagnostics.AddError("Unable to import deployment",
			fmt.Sprintf("The import ID %q is neither a deployment ID (UUID) nor <flow_name>/<deployment_name>.", id))
		return
	}
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	dep, err := r.client.ReadDeploymentByName(ctx, flowName, name)
	if err != nil {
		addAPIError(&resp.Diagnostics, "import", fmt.Sprintf("deployment %q of flow %q", name, flowName), err)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), dep.ID)...)
}

// UpgradeState reads the state of the prefecthq/prefect provider (schema
// version 0) and of earlier releases of this provider. That provider stores
// "" for the optional strings the server has no value for, and the nil UUID
// for no storage document or global concurrency limit, where this provider
// stores null.
func (r *DeploymentResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return stateUpgrades(deploymentSchemaVersion, "prefect_deployment", func(s priorState, _ *diag.Diagnostics) {
		if !s.upstream {
			return
		}
		s.emptyToNull("description", "entrypoint", "path", "version", "work_pool_name", "work_queue_name",
			"storage_document_id", "global_concurrency_limit_id")
		for _, n := range []string{"storage_document_id", "global_concurrency_limit_id"} {
			if s.attrs[n] == uuid.Nil.String() {
				s.attrs[n] = nil
			}
		}
	})
}

// linkConcurrencyLimit links the deployment to the global concurrency limit
// limitID (nil: unlinks it) and returns the deployment as it is then.
func (r *DeploymentResource) linkConcurrencyLimit(ctx context.Context, id string, limitID *string, what string) (prefect.Deployment, error) {
	if r.client == nil {
		return prefect.Deployment{}, fmt.Errorf("the provider is not configured for %s", what)
	}
	if err := r.client.LinkDeploymentConcurrencyLimit(ctx, id, limitID); err != nil {
		return prefect.Deployment{}, err
	}
	return r.client.ReadDeployment(ctx, id)
}

// ModifyPlan plans the work queue the server will choose, checks the job
// variables against the work pool, and keeps the prior updated time in a plan
// that changes nothing else.
func (r *DeploymentResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var poolName types.String
	resp.Diagnostics.Append(resp.Plan.GetAttribute(ctx, path.Root("work_pool_name"), &poolName)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// The pool as it is on the server; nil when unknown yet, not created yet,
	// or unreadable (poolErr).
	var pool *prefect.WorkPool
	var poolErr error
	if known(poolName) && r.client != nil {
		name := poolName.ValueString()
		p, err := r.cache.pool(name, func() (prefect.WorkPool, error) { return r.reads.pool(ctx, r.client, name) })
		switch {
		case err == nil:
			pool = &p
		case !prefect.IsNotFound(err):
			poolErr = err
		}
	}
	r.planWorkQueue(ctx, req, resp, poolName, pool)
	r.checkJobVariables(ctx, req, resp, pool, poolErr)
	keepUpdatedWhenUnchanged(ctx, req, resp)
}

// ValidateConfig checks that each pull step sets the fields of its type only.
func (r *DeploymentResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var steps types.List
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("pull_steps"), &steps)...)
	if resp.Diagnostics.HasError() || steps.IsNull() || steps.IsUnknown() {
		return
	}
	var models []DeploymentPullStepModel
	if diags := steps.ElementsAs(ctx, &models, false); diags.HasError() {
		return // an unknown element: checked at apply
	}
	for i, s := range models {
		at := path.Root("pull_steps").AtListIndex(i)
		for _, msg := range s.problems() {
			resp.Diagnostics.AddAttributeError(at.AtName(msg.field), "Invalid pull step", msg.text)
		}
	}
}

// planWorkQueue plans work_queue_name when it is not configured: the pool's
// default queue, which the server picks; while the pool cannot be read, the
// prior queue if the pool stays the same, else unknown; without a pool, none.
func (r *DeploymentResource) planWorkQueue(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse,
	poolName types.String, pool *prefect.WorkPool) {
	var configured types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("work_queue_name"), &configured)...)
	if resp.Diagnostics.HasError() || !configured.IsNull() {
		return
	}
	defaultQueue := ""
	if pool != nil {
		defaultQueue = r.defaultQueue(ctx, *pool)
	}
	queue := types.StringUnknown()
	switch {
	case poolName.IsNull():
		queue = types.StringNull()
	case defaultQueue != "":
		queue = types.StringValue(defaultQueue)
	case !req.State.Raw.IsNull():
		var statePool, stateQueue types.String
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("work_pool_name"), &statePool)...)
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("work_queue_name"), &stateQueue)...)
		if statePool.Equal(poolName) {
			queue = stateQueue
		}
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("work_queue_name"), queue)...)
}

// defaultQueue returns the name of a pool's default queue, or "" when it
// cannot be read.
func (r *DeploymentResource) defaultQueue(ctx context.Context, pool prefect.WorkPool) string {
	queues, err := r.client.ListWorkQueues(ctx, pool.Name)
	if err != nil {
		return ""
	}
	for _, q := range queues {
		if q.ID == pool.DefaultQueueID {
			return q.Name
		}
	}
	return ""
}

// checkJobVariables validates planned job variables against the work pool,
// as the server and the dispatcher will, when either changes. The pool is
// the one this plan leaves: with the template the plan gives it when the
// plan changes that (recorded by the pool's own plan), else as it is on the
// server. A template known only after apply, or a pool the same apply
// creates without one, is left to the server at apply. Following the server,
// a template without a variables schema checks nothing, and one without a
// job_configuration renders nothing. Destroy plans never get here.
func (r *DeploymentResource) checkJobVariables(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse,
	pool *prefect.WorkPool, poolErr error) {
	var poolName, vars, name types.String
	resp.Diagnostics.Append(resp.Plan.GetAttribute(ctx, path.Root("work_pool_name"), &poolName)...)
	resp.Diagnostics.Append(resp.Plan.GetAttribute(ctx, path.Root("job_variables"), &vars)...)
	resp.Diagnostics.Append(resp.Plan.GetAttribute(ctx, path.Root("name"), &name)...)
	if resp.Diagnostics.HasError() || !known(poolName) || !known(vars) {
		return
	}
	if !req.State.Raw.IsNull() {
		var statePool, stateVars types.String
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("work_pool_name"), &statePool)...)
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("job_variables"), &stateVars)...)
		if statePool.Equal(poolName) && known(stateVars) && jsonattr.Equal(stateVars.ValueString(), vars.ValueString()) {
			return
		}
	}
	at := path.Root("job_variables")
	checkedAgainst := "as it is on the server now"
	if planned, ok := r.planned.lookup(poolName.ValueString()); ok {
		if !planned.known {
			return // the pool's template is known at apply, where the server checks
		}
		wp := planned.apply(poolName.ValueString(), pool)
		pool, poolErr, checkedAgainst = &wp, nil, "with the base job template this plan gives it"
	}
	if poolErr != nil {
		resp.Diagnostics.AddAttributeWarning(at, "Unable to check job variables",
			fmt.Sprintf("Reading work pool %q failed, so the job variables were not checked at plan time; the server checks them at apply: %s",
				poolName.ValueString(), poolErr))
		return
	}
	if pool == nil {
		return
	}
	jobVariables, err := jsonattr.DecodeObject(vars.ValueString())
	if err != nil {
		return // the attribute's validator reports it
	}
	wp := *pool
	var lookups dispatch.Lookups // nil renders without resolving blocks and variables
	if r.client != nil {
		lookups = r.client
	}
	err = checkPoolJobVariables(ctx, lookups, wp, name.ValueString(), jobVariables)
	var invalid *template.ValidationError
	var config *template.ConfigError
	var resolve *template.ResolveError
	switch {
	case err == nil:
	case errors.As(err, &invalid), errors.As(err, &config):
		resp.Diagnostics.AddAttributeError(at, fmt.Sprintf("Invalid job variables for work pool %q", wp.Name),
			fmt.Sprintf("%s\n\nThe job variables were checked against work pool %q %s. Fix job_variables, or the "+
				"pool's base job template; if the pool is changed by this configuration, refer to it as "+
				"prefect_work_pool.<name>.name so that the check uses the template the plan gives it. "+
				"(terraform destroy also plans the configuration first; terraform destroy -refresh=false skips that.)",
				err, wp.Name, checkedAgainst))
	case errors.As(err, &resolve):
		resp.Diagnostics.AddAttributeWarning(at, fmt.Sprintf("Unresolved placeholder in a job of work pool %q", wp.Name),
			err.Error()+"\n\nA block or variable created by this apply is resolved when a flow run starts.")
	default:
		resp.Diagnostics.AddAttributeWarning(at, "Unable to check job variables", err.Error())
	}
}

// checkPoolJobVariables checks a deployment's job variables against a pool
// as the server does when it saves the deployment (against the variables
// schema, when the template has one) and, when the template has a
// job_configuration and a variables schema, renders a job from them as the
// dispatcher will. A pool created without a base job template has the empty
// one, which checks nothing.
func checkPoolJobVariables(ctx context.Context, lookups dispatch.Lookups, pool prefect.WorkPool, deployment string, jobVariables map[string]any) error {
	schema, _ := pool.BaseJobTemplate["variables"].(map[string]any)
	if pool.BaseJobTemplate["job_configuration"] == nil || schema == nil {
		if schema == nil {
			return nil
		}
		return template.ValidateDeployment(schema, jobVariables, pool.Name, deployment)
	}
	return dispatch.CheckJobVariables(ctx, lookups, pool, deployment, jobVariables)
}

// settings converts the planned deployment to the API's settings; the
// concurrency limit is set, SetConcurrencyLimit is left to the caller.
func (m DeploymentResourceModel) settings(ctx context.Context, diags *diag.Diagnostics) prefect.DeploymentSettings {
	object := func(v types.String, attr string) map[string]any {
		if !known(v) {
			return nil
		}
		obj, err := jsonattr.DecodeObject(v.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root(attr), "Invalid "+attr, err.Error())
		}
		return obj
	}
	var tags []string
	if known(m.Tags) {
		diags.Append(m.Tags.ElementsAs(ctx, &tags, false)...)
	}
	out := prefect.DeploymentSettings{
		Version:                stringPtr(m.Version),
		Description:            stringPtr(m.Description),
		Paused:                 m.Paused.ValueBool(),
		Parameters:             object(m.Parameters, "parameters"),
		ParameterOpenAPISchema: object(m.ParameterOpenAPISchema, "parameter_openapi_schema"),
		Tags:                   tags,
		WorkQueueName:          stringPtr(m.WorkQueueName),
		WorkPoolName:           stringPtr(m.WorkPoolName),
		Path:                   stringPtr(m.Path),
		JobVariables:           object(m.JobVariables, "job_variables"),
		PullSteps:              []map[string]any{},
		Entrypoint:             stringPtr(m.Entrypoint),
		StorageDocumentID:      stringPtr(m.StorageDocumentID),
		EnforceParameterSchema: m.EnforceParameterSchema.ValueBool(),
		ConcurrencyLimit:       intPtr(m.ConcurrencyLimit),
	}
	if m.ConcurrencyOptions != nil {
		out.ConcurrencyOptions = &prefect.ConcurrencyOptions{CollisionStrategy: m.ConcurrencyOptions.CollisionStrategy.ValueString()}
	}
	for i, s := range m.PullSteps {
		step, err := s.toAPI()
		if err != nil {
			diags.AddAttributeError(path.Root("pull_steps").AtListIndex(i), "Invalid pull step", err.Error())
			continue
		}
		out.PullSteps = append(out.PullSteps, step)
	}
	return out
}

// fromAPI copies the server's deployment into the model, keeping the
// configured spelling of equal JSON values.
func (m *DeploymentResourceModel) fromAPI(ctx context.Context, dep prefect.Deployment, diags *diag.Diagnostics) {
	m.ID = types.StringValue(dep.ID)
	m.Created = timestamp(dep.Created)
	m.Updated = timestamp(dep.Updated)
	m.Name = types.StringValue(dep.Name)
	m.FlowID = types.StringValue(dep.FlowID)
	m.Entrypoint = optionalString(dep.Entrypoint, m.Entrypoint)
	m.Path = optionalString(dep.Path, m.Path)
	m.Version = optionalString(dep.Version, m.Version)
	m.Description = optionalString(dep.Description, m.Description)
	m.Tags = stringSet(ctx, dep.Tags, diags)
	m.Paused = types.BoolValue(dep.Paused)
	m.WorkPoolName = optionalString(dep.WorkPoolName, m.WorkPoolName)
	m.WorkQueueName = optionalString(dep.WorkQueueName, m.WorkQueueName)
	m.StorageDocumentID = optionalString(dep.StorageDocumentID, m.StorageDocumentID)
	m.EnforceParameterSchema = types.BoolValue(dep.EnforceParameterSchema)

	fail := func(attr string, err error) {
		diags.AddAttributeError(path.Root(attr), fmt.Sprintf("Unable to read %s", deploymentName(dep.Name)), err.Error())
	}
	jobVars, err := jsonattr.Encode(orEmpty(dep.JobVariables))
	if err != nil {
		fail("job_variables", err)
		return
	}
	m.JobVariables = jsonattr.KeepString(m.JobVariables, jobVars)
	schemaDoc, err := jsonattr.Encode(orEmpty(dep.ParameterOpenAPISchema))
	if err != nil {
		fail("parameter_openapi_schema", err)
		return
	}
	m.ParameterOpenAPISchema = keepIf(m.ParameterOpenAPISchema, schemaDoc, func(prior any) bool {
		return parameterSchemasMatch(prior, dep.ParameterOpenAPISchema)
	})
	params, err := jsonattr.Encode(orEmpty(dep.Parameters))
	if err != nil {
		fail("parameters", err)
		return
	}
	m.Parameters = keepIf(m.Parameters, params, func(prior any) bool {
		return parametersMatch(prior, orEmpty(dep.Parameters), dep.ParameterOpenAPISchema)
	})

	m.ConcurrencyLimit = types.Int64Null()
	m.GlobalConcurrencyLimit = types.StringNull()
	if l := dep.GlobalConcurrencyLimit; l != nil {
		if l.Name == prefect.DeploymentLimitName(dep.ID) {
			m.ConcurrencyLimit = types.Int64Value(int64(l.Limit))
		} else {
			m.GlobalConcurrencyLimit = types.StringValue(l.ID)
		}
	}
	m.ConcurrencyOptions = nil
	if o := dep.ConcurrencyOptions; o != nil {
		m.ConcurrencyOptions = &DeploymentConcurrencyModel{CollisionStrategy: types.StringValue(o.CollisionStrategy)}
	}
	m.PullSteps = make([]DeploymentPullStepModel, 0, len(dep.PullSteps))
	for i, raw := range dep.PullSteps {
		step, ignored, err := pullStepFromAPI(raw)
		if err != nil {
			fail("pull_steps", fmt.Errorf("pull step %d: %w", i, err))
			return
		}
		if len(ignored) > 0 {
			diags.AddAttributeWarning(path.Root("pull_steps").AtListIndex(i), "Pull step fields not managed",
				fmt.Sprintf("Pull step %d of %s has fields this provider does not manage: %s. They are dropped when "+
					"Terraform next updates the deployment.", i, deploymentName(dep.Name), strings.Join(ignored, ", ")))
		}
		m.PullSteps = append(m.PullSteps, step)
	}
}

// keepIf returns prior when it is a known JSON document for which same
// holds, and server otherwise.
func keepIf(prior types.String, server string, same func(prior any) bool) types.String {
	if known(prior) {
		if p, err := jsonattr.Decode(prior.ValueString()); err == nil && same(p) {
			return prior
		}
	}
	return types.StringValue(server)
}

// parametersMatch reports whether the server's parameters are what the
// configured ones become on the server. They are semantically equal JSON,
// except that
//   - a configured Prefect template value ({"__prefect_kind": ...}, at any
//     depth) matches any value: the server replaces it with the value it
//     resolves to when the deployment is updated;
//   - a parameter the server has and the configuration lacks is not a
//     difference when its value is the parameter's default in the schema.
func parametersMatch(configured any, server map[string]any, schema map[string]any) bool {
	cfg, ok := configured.(map[string]any)
	if !ok {
		return false
	}
	defaults := map[string]any{}
	if props, ok := schema["properties"].(map[string]any); ok {
		for name, p := range props {
			if prop, ok := p.(map[string]any); ok {
				if d, has := prop["default"]; has {
					defaults[name] = d
				}
			}
		}
	}
	for k, sv := range server {
		cv, set := cfg[k]
		switch {
		case set && !parameterValueMatches(cv, sv):
			return false
		case !set:
			if d, has := defaults[k]; !has || !jsonattr.EqualValues(d, sv) {
				return false
			}
		}
	}
	for k := range cfg {
		if _, has := server[k]; !has {
			return false
		}
	}
	return true
}

// parameterValueMatches is jsonattr.EqualValues with Prefect template values
// in configured matching anything.
func parameterValueMatches(configured, server any) bool {
	switch c := configured.(type) {
	case map[string]any:
		if _, tmpl := c["__prefect_kind"]; tmpl {
			return true
		}
		s, ok := server.(map[string]any)
		if !ok || len(s) != len(c) {
			return false
		}
		for k, cv := range c {
			sv, has := s[k]
			if !has || !parameterValueMatches(cv, sv) {
				return false
			}
		}
		return true
	case []any:
		s, ok := server.([]any)
		if !ok || len(s) != len(c) {
			return false
		}
		for i := range c {
			if !parameterValueMatches(c[i], s[i]) {
				return false
			}
		}
		return true
	}
	return jsonattr.EqualValues(configured, server)
}

// parameterSchemasMatch reports whether two parameter schemas are equal,
// taking null, {} and {"type": "object", "properties": {}} as the same
// empty schema, as the server stores the first two as the third.
func parameterSchemasMatch(a, b any) bool {
	empty := func(v any) bool {
		m, ok := v.(map[string]any)
		switch {
		case v == nil:
			return true
		case !ok:
			return false
		case len(m) == 0:
			return true
		}
		props, ok := m["properties"].(map[string]any)
		return len(m) == 2 && m["type"] == "object" && ok && len(props) == 0
	}
	if empty(a) || empty(b) {
		return empty(a) && empty(b)
	}
	return jsonattr.EqualValues(a, b)
}

// parametersPlan keeps the parameters in state when the configured ones
// match them (parametersMatch), so what the server resolves or fills in never
// shows as a change.
type parametersPlan struct{}

func (parametersPlan) Description(context.Context) string {
	return "Keeps the parameters in state when the configured ones match them once the server has resolved templates and filled in defaults."
}

func (p parametersPlan) MarkdownDescription(ctx context.Context) string { return p.Description(ctx) }

func (parametersPlan) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if !known(req.ConfigValue) || !known(req.StateValue) {
		return
	}
	configured, err := jsonattr.Decode(req.ConfigValue.ValueString())
	if err != nil {
		return
	}
	state, err := jsonattr.DecodeObject(req.StateValue.ValueString())
	if err != nil {
		return
	}
	var schemaDoc types.String
	req.State.GetAttribute(ctx, path.Root("parameter_openapi_schema"), &schemaDoc)
	var paramSchema map[string]any
	if known(schemaDoc) {
		paramSchema, _ = jsonattr.DecodeObject(schemaDoc.ValueString())
	}
	if parametersMatch(configured, state, paramSchema) {
		resp.PlanValue = req.StateValue
	}
}

// parameterSchemaPlan keeps the schema in state when the configured one is
// equal to it (parameterSchemasMatch).
type parameterSchemaPlan struct{}

func (parameterSchemaPlan) Description(context.Context) string {
	return "Keeps the schema in state when the configured one is semantically equal to it; all empty schemas are equal."
}

func (p parameterSchemaPlan) MarkdownDescription(ctx context.Context) string {
	return p.Description(ctx)
}

func (parameterSchemaPlan) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if !known(req.ConfigValue) || !known(req.StateValue) {
		return
	}
	configured, err := jsonattr.Decode(req.ConfigValue.ValueString())
	if err != nil {
		return
	}
	state, err := jsonattr.Decode(req.StateValue.ValueString())
	if err == nil && parameterSchemasMatch(configured, state) {
		resp.PlanValue = req.StateValue
	}
}

// uuidString returns a validator that accepts a UUID.
func uuidString() validator.String { return uuidValidator{} }

type uuidValidator struct{}

func (uuidValidator) Description(context.Context) string { return "must be a UUID" }

func (v uuidValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (uuidValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if !known(req.ConfigValue) {
		return
	}
	if _, err := uuid.Parse(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid ID",
			fmt.Sprintf("%s must be a UUID such as 00000000-0000-0000-0000-000000000000, got %q.", req.Path, req.ConfigValue.ValueString()))
	}
}

// stringSet converts tags from the API to a set value; nil is an empty set.
func stringSet(ctx context.Context, items []string, diags *diag.Diagnostics) types.Set {
	if items == nil {
		items = []string{}
	}
	sort.Strings(items)
	v, d := types.SetValueFrom(ctx, types.StringType, items)
	diags.Append(d...)
	return v
}

// known reports whether a value is neither null nor unknown.
func known(v attr.Value) bool { return !v.IsNull() && !v.IsUnknown() }

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func derefString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func deploymentName(name string) string { return fmt.Sprintf("deployment %q", name) }

// pullStepKind describes a pull step type of the prefecthq/prefect provider.
type pullStepKind struct {
	// function is the step's function: its key in the API's pull steps.
	function string
	// fields are the attributes the type takes besides requires; required
	// are those it needs.
	fields, required []string
}

// pullStepTypes returns the pull step types, in the order the docs list them.
func pullStepTypes() []string {
	return []string{"set_working_directory", "git_clone", "pull_from_s3", "pull_from_gcs",
		"pull_from_azure_blob_storage", "run_shell_script", "pip_install_requirements"}
}

// pullStepKindOf returns the kind of a pull step type.
func pullStepKindOf(typ string) (pullStepKind, bool) {
	const steps = "prefect.deployments.steps."
	switch typ {
	case "set_working_directory":
		return pullStepKind{steps + typ, []string{"directory"}, []string{"directory"}}, true
	case "git_clone":
		return pullStepKind{steps + typ, []string{"repository", "branch", "access_token", "credentials", "include_submodules"}, []string{"repository"}}, true
	case "pull_from_s3":
		return pullStepKind{"prefect_aws.deployments.steps." + typ, []string{"bucket", "folder", "credentials"}, []string{"bucket"}}, true
	case "pull_from_gcs":
		return pullStepKind{"prefect_gcp.deployments.steps." + typ, []string{"bucket", "folder", "credentials"}, []string{"bucket"}}, true
	case "pull_from_azure_blob_storage":
		return pullStepKind{"prefect_azure.deployments.steps." + typ, []string{"container", "folder", "credentials"}, []string{"container"}}, true
	case "run_shell_script":
		return pullStepKind{steps + typ, []string{"script", "directory", "env", "stream_output", "expand_env_vars"}, []string{"script"}}, true
	case "pip_install_requirements":
		return pullStepKind{steps + typ, []string{"directory", "requirements_file", "stream_output"}, nil}, true
	}
	return pullStepKind{}, false
}

// pullStepType is the inverse of pullStepKindOf: a step function's type, or
// the function itself for steps of other types.
func pullStepType(function string) string {
	for _, t := range pullStepTypes() {
		if k, _ := pullStepKindOf(t); k.function == function {
			return t
		}
	}
	return function
}

// pullStepField is one optional attribute of a pull step.
type pullStepField struct {
	name  string
	value attr.Value
}

// fields lists the step's optional attributes by their API names.
func (s DeploymentPullStepModel) fields() []pullStepField {
	return []pullStepField{
		{"credentials", s.Credentials}, {"requires", s.Requires}, {"directory", s.Directory}, {"script", s.Script},
		{"env", s.Env}, {"stream_output", s.StreamOutput}, {"expand_env_vars", s.ExpandEnvVars},
		{"requirements_file", s.RequirementsFile}, {"repository", s.Repository}, {"branch", s.Branch},
		{"access_token", s.AccessToken}, {"include_submodules", s.IncludeSubmodules}, {"bucket", s.Bucket},
		{"container", s.Container}, {"folder", s.Folder},
	}
}

// pullStepProblem is an attribute of a configured pull step that its type
// does not take, or lacks.
type pullStepProblem struct{ field, text string }

// problems checks a configured step against its type. A type given as a
// step function's full name takes any field.
func (s DeploymentPullStepModel) problems() []pullStepProblem {
	if !known(s.Type) {
		return nil
	}
	typ := s.Type.ValueString()
	kind, ok := pullStepKindOf(typ)
	if !ok {
		if strings.Contains(typ, ".") {
			return nil
		}
		return []pullStepProblem{{"type", fmt.Sprintf("Unknown pull step type %q: use one of %s, or the full name of a "+
			"step function such as prefect.deployments.steps.git_clone.", typ, strings.Join(pullStepTypes(), ", "))}}
	}
	allowed := map[string]bool{"requires": true}
	for _, f := range kind.fields {
		allowed[f] = true
	}
	var out []pullStepProblem
	set := map[string]bool{}
	for _, f := range s.fields() {
		if f.value.IsNull() {
			continue
		}
		set[f.name] = true
		if !allowed[f.name] {
			out = append(out, pullStepProblem{f.name, fmt.Sprintf("%s does not apply to a %s pull step, which takes %s.",
				f.name, typ, strings.Join(append([]string{"requires"}, kind.fields...), ", "))})
		}
	}
	for _, r := range kind.required {
		if !set[r] {
			out = append(out, pullStepProblem{r, fmt.Sprintf("A %s pull step needs %s.", typ, r)})
		}
	}
	return out
}

// toAPI converts a planned step to the API's {"<function>": {fields}}.
func (s DeploymentPullStepModel) toAPI() (map[string]any, error) {
	function := s.Type.ValueString()
	if kind, ok := pullStepKindOf(function); ok {
		function = kind.function
	}
	body := map[string]any{}
	for _, f := range s.fields() {
		if f.value.IsNull() {
			continue
		}
		v, err := jsonattr.FromAttr(f.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		body[f.name] = v
	}
	return map[string]any{function: body}, nil
}

// pullStepFromAPI converts a step of the API; ignored lists its fields the
// model has no attribute for.
func pullStepFromAPI(raw map[string]any) (step DeploymentPullStepModel, ignored []string, err error) {
	step.Env = types.MapNull(types.StringType)
	if len(raw) != 1 {
		return step, nil, fmt.Errorf("has %d keys, want one: the step function", len(raw))
	}
	for function, v := range raw {
		step.Type = types.StringValue(pullStepType(function))
		body, _ := v.(map[string]any)
		if v != nil && body == nil {
			return step, nil, fmt.Errorf("%s: its fields are not an object", function)
		}
		keys := make([]string, 0, len(body))
		for k := range body {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !step.set(k, body[k]) {
				ignored = append(ignored, k)
			}
		}
	}
	return step, ignored, nil
}

// set sets the attribute of an API field; false means there is none for it,
// or the value does not fit it.
func (s *DeploymentPullStepModel) set(name string, v any) bool {
	str := func(dst *types.String) bool {
		x, ok := v.(string)
		if ok {
			*dst = types.StringValue(x)
		}
		return ok
	}
	boolean := func(dst *types.Bool) bool {
		x, ok := v.(bool)
		if ok {
			*dst = types.BoolValue(x)
		}
		return ok
	}
	switch name {
	case "credentials":
		return str(&s.Credentials)
	case "requires":
		return str(&s.Requires)
	case "directory":
		return str(&s.Directory)
	case "script":
		return str(&s.Script)
	case "requirements_file":
		return str(&s.RequirementsFile)
	case "repository":
		return str(&s.Repository)
	case "branch":
		return str(&s.Branch)
	case "access_token":
		return str(&s.AccessToken)
	case "bucket":
		return str(&s.Bucket)
	case "container":
		return str(&s.Container)
	case "folder":
		return str(&s.Folder)
	case "stream_output":
		return boolean(&s.StreamOutput)
	case "expand_env_vars":
		return boolean(&s.ExpandEnvVars)
	case "include_submodules":
		return boolean(&s.IncludeSubmodules)
	case "env":
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		elems := make(map[string]attr.Value, len(m))
		for k, e := range m {
			x, ok := e.(string)
			if !ok {
				return false
			}
			elems[k] = types.StringValue(x)
		}
		s.Env = types.MapValueMust(types.StringType, elems)
		return true
	}
	return false
}

// pullStepsAttribute is the schema of pull_steps, shaped as the prefecthq/prefect
// provider's.
func pullStepsAttribute() schema.ListNestedAttribute {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, MarkdownDescription: desc}
	}
	boolean := func(desc string) schema.BoolAttribute {
		return schema.BoolAttribute{Optional: true, MarkdownDescription: desc}
	}
	attrs := map[string]schema.Attribute{
		"type": schema.StringAttribute{
			Required: true,
			MarkdownDescription: "The type of pull step: `" + strings.Join(pullStepTypes(), "`, `") + "`, or the full name " +
				"of another step function (`module.function`), which takes any of the fields below.",
		},
		"credentials": str("(For `git_clone` and `pull_from_*`) A credentials block reference, e.g. " +
			"`{{ prefect.blocks.github-credentials.private-repo }}`."),
		"requires":          str("Python packages the step needs, e.g. `prefect-aws>=0.3.4`."),
		"directory":         str("(For `set_working_directory`, `run_shell_script` and `pip_install_requirements`) The directory the step works in."),
		"script":            str("(For `run_shell_script`) The shell script to run."),
		"env":               schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "(For `run_shell_script`) Environment variables of the script."},
		"stream_output":     boolean("(For `run_shell_script` and `pip_install_requirements`) Whether to stream the command's output."),
		"expand_env_vars":   boolean("(For `run_shell_script`) Whether to expand environment variables in the script before running it."),
		"requirements_file": str("(For `pip_install_requirements`) The requirements file to install from."),
		"repository":        str("(For `git_clone`) The URL of the repository to clone."),
		"branch":            str("(For `git_clone`) The branch to clone; the default branch when unset."),
		"access_token": schema.StringAttribute{Optional: true,
			MarkdownDescription: "(For `git_clone`) An access token for the repository. Not marked sensitive, as in the " +
				"prefecthq/prefect provider (a change of sensitivity would show as an update of every deployment moved " +
				"from it), so use a Secret block reference such as `{{ prefect.blocks.secret.github-token }}`, or " +
				"`credentials`, rather than the token itself."},
		"include_submodules": boolean("(For `git_clone`) Whether to clone the repository's submodules too."),
		"bucket":             str("(For `pull_from_s3` and `pull_from_gcs`) The bucket the flow's files are in."),
		"container":          str("(For `pull_from_azure_blob_storage`) The container the flow's files are in."),
		"folder":             str("(For `pull_from_*`) The folder of the bucket or container the flow's files are in."),
	}
	attrTypes := map[string]attr.Type{}
	for name, a := range attrs {
		attrTypes[name] = a.GetType()
	}
	return schema.ListNestedAttribute{
		Optional: true,
		Computed: true,
		Default:  listdefault.StaticValue(types.ListValueMust(types.ObjectType{AttrTypes: attrTypes}, []attr.Value{})),
		MarkdownDescription: "Steps a worker or the dispatcher's job runs before the flow, to fetch its code: " +
			"a list of objects with a `type` and the fields of that type. Defaults to none.",
		NestedObject: schema.NestedAttributeObject{Attributes: attrs},
	}
}

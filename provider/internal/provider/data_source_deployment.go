package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var (
	_ datasource.DataSourceWithConfigure        = (*DeploymentDataSource)(nil)
	_ datasource.DataSourceWithConfigValidators = (*DeploymentDataSource)(nil)
)

// DeploymentDataSource reads one deployment by ID, or by its name and its
// flow's name (data.prefect_deployment).
type DeploymentDataSource struct {
	client *prefect.Client
}

// DeploymentDataSourceModel is a deployment as the data source reports it:
// the resource's attributes and the flow's name.
type DeploymentDataSourceModel struct {
	DeploymentResourceModel
	FlowName types.String `tfsdk:"flow_name"`
}

// NewDeploymentDataSource returns the prefect_deployment data source.
func NewDeploymentDataSource() datasource.DataSource { return &DeploymentDataSource{} }

// Metadata names the data source.
func (d *DeploymentDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_deployment"
}

// Schema describes the data source.
func (d *DeploymentDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	lookup := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, Computed: true, MarkdownDescription: desc}
	}
	pullStep := map[string]schema.Attribute{"env": schema.MapAttribute{Computed: true, ElementType: types.StringType,
		MarkdownDescription: "(For `run_shell_script`) Environment variables of the script."}}
	for name, a := range pullStepsAttribute().NestedObject.Attributes {
		switch a.GetType() {
		case types.BoolType:
			pullStep[name] = schema.BoolAttribute{Computed: true, MarkdownDescription: a.GetMarkdownDescription()}
		case types.StringType:
			pullStep[name] = schema.StringAttribute{Computed: true, Sensitive: a.IsSensitive(), MarkdownDescription: a.GetMarkdownDescription()}
		}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a deployment by `id`, or by `name` and `flow_name`.",
		Attributes: withDataCloudScope(map[string]schema.Attribute{
			"id":                       lookup("Deployment ID (UUID). Set it, or `name` and `flow_name`."),
			"name":                     lookup("Name of the deployment; with `flow_name`."),
			"flow_name":                lookup("Name of the deployment's flow; with `name`."),
			"created":                  str("When the deployment was created (RFC 3339)."),
			"updated":                  str("When the deployment was last changed (RFC 3339)."),
			"flow_id":                  str("ID (UUID) of the deployment's flow."),
			"entrypoint":               str("Where the flow function is, relative to `path`."),
			"path":                     str("The working directory of the flow's code."),
			"version":                  str("The deployment's version."),
			"description":              str("Description of the deployment."),
			"tags":                     schema.SetAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Tags of the deployment."},
			"paused":                   schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the deployment is paused."},
			"work_pool_name":           str("Name of the deployment's work pool."),
			"work_queue_name":          str("Name of the deployment's work queue."),
			"job_variables":            str("Job variables, a JSON object (keys sorted)."),
			"parameters":               str("Parameters of the flow runs, a JSON object (keys sorted)."),
			"parameter_openapi_schema": str("The JSON schema of the flow's parameters."),
			"enforce_parameter_schema": schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the server checks parameters against the schema."},
			"pull_steps": schema.ListNestedAttribute{Computed: true, MarkdownDescription: "Steps run before the flow to fetch its code.",
				NestedObject: schema.NestedAttributeObject{Attributes: pullStep}},
			"concurrency_limit":           schema.Int64Attribute{Computed: true, MarkdownDescription: "The deployment's concurrency limit; null means none."},
			"global_concurrency_limit_id": schema.StringAttribute{Computed: true, MarkdownDescription: "The global concurrency limit the deployment is linked to; null when none."},
			"concurrency_options": schema.SingleNestedAttribute{Computed: true, MarkdownDescription: "What happens to a run that finds the limit reached.",
				Attributes: map[string]schema.Attribute{"collision_strategy": str("`ENQUEUE` or `CANCEL_NEW`.")}},
			"storage_document_id": str("ID (UUID) of the block document holding the flow's code storage."),
		}),
	}
}

// ConfigValidators asks for an ID, or a name with a flow name.
func (d *DeploymentDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{
		datasourcevalidator.ExactlyOneOf(path.MatchRoot("id"), path.MatchRoot("name")),
		datasourcevalidator.RequiredTogether(path.MatchRoot("name"), path.MatchRoot("flow_name")),
	}
}

// Configure receives the provider's client.
func (d *DeploymentDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Read reads the deployment.
func (d *DeploymentDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg DeploymentDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() || !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	var dep prefect.Deployment
	var err error
	what := fmt.Sprintf("deployment %s", cfg.ID.ValueString())
	if known(cfg.ID) {
		dep, err = d.client.ReadDeployment(ctx, cfg.ID.ValueString())
	} else {
		what = fmt.Sprintf("deployment %q of flow %q", cfg.Name.ValueString(), cfg.FlowName.ValueString())
		dep, err = d.client.ReadDeploymentByName(ctx, cfg.FlowName.ValueString(), cfg.Name.ValueString())
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", what, err)
		return
	}
	flowName := cfg.FlowName
	if !known(flowName) {
		flow, err := d.client.ReadFlow(ctx, dep.FlowID)
		if err != nil {
			addAPIError(&resp.Diagnostics, "read the flow of", what, err)
			return
		}
		flowName = types.StringValue(flow.Name)
	}
	out := DeploymentDataSourceModel{FlowName: flowName}
	out.fromAPI(ctx, dep, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &out)...)
}

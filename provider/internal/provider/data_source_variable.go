package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var (
	_ datasource.DataSourceWithConfigure        = (*VariableDataSource)(nil)
	_ datasource.DataSourceWithConfigValidators = (*VariableDataSource)(nil)
)

// VariableDataSource reads a variable by id or name (data.prefect_variable).
type VariableDataSource struct {
	client *prefect.Client
}

// VariableDataSourceModel is a variable as the data source reports it.
type VariableDataSourceModel = VariableResourceModel

// NewVariableDataSource returns the prefect_variable data source.
func NewVariableDataSource() datasource.DataSource { return &VariableDataSource{} }

// Metadata names the data source.
func (d *VariableDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_variable"
}

// Schema describes the data source.
func (d *VariableDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a variable by ID or name; set exactly one.",
		Attributes: withDataCloudScope(map[string]schema.Attribute{
			"id":      schema.StringAttribute{Optional: true, Computed: true, MarkdownDescription: "Variable ID (UUID)."},
			"name":    schema.StringAttribute{Optional: true, Computed: true, MarkdownDescription: "Name of the variable."},
			"created": schema.StringAttribute{Computed: true, MarkdownDescription: "When the variable was created (RFC 3339)."},
			"updated": schema.StringAttribute{Computed: true, MarkdownDescription: "When the variable was last changed (RFC 3339)."},
			"value":   schema.DynamicAttribute{Computed: true, MarkdownDescription: "Value of the variable: any JSON value."},
			"tags":    schema.SetAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Tags of the variable."},
		}),
	}
}

// ConfigValidators requires exactly one of id and name.
func (d *VariableDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{
		datasourcevalidator.ExactlyOneOf(path.MatchRoot("id"), path.MatchRoot("name")),
	}
}

// Configure receives the provider's client.
func (d *VariableDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Read reads the variable.
func (d *VariableDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m VariableDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	var (
		v   prefect.Variable
		err error
	)
	if !m.ID.IsNull() {
		v, err = d.client.ReadVariableByID(ctx, m.ID.ValueString())
	} else {
		v, err = d.client.ReadVariable(ctx, m.Name.ValueString())
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", variableName(m.Name.ValueString()+m.ID.ValueString()), err)
		return
	}
	m.fromAPI(ctx, v, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

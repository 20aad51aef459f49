package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

var _ datasource.DataSourceWithConfigure = (*AutomationDataSource)(nil)

// AutomationDataSource reads an automation by ID (data.prefect_automation).
type AutomationDataSource struct {
	client *prefect.Client
}

// AutomationDataSourceModel is an automation as the data source reports it.
type AutomationDataSourceModel = AutomationResourceModel

// NewAutomationDataSource returns the prefect_automation data source.
func NewAutomationDataSource() datasource.DataSource { return &AutomationDataSource{} }

// Metadata names the data source.
func (d *AutomationDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_automation"
}

// Schema describes the data source: the resource's attributes, read-only,
// with the ID to look up.
func (d *AutomationDataSource) Schema(ctx context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	var rs resource.SchemaResponse
	(&AutomationResource{}).Schema(ctx, resource.SchemaRequest{}, &rs)
	attrs := computedDataAttributes(rs.Schema.Attributes)
	attrs["id"] = schema.StringAttribute{Required: true, MarkdownDescription: "Automation ID (UUID)."}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads an automation by ID: its trigger and actions, as `prefect_automation` manages them.",
		Attributes:          withDataCloudScope(attrs),
	}
}

// Configure receives the provider's client.
func (d *AutomationDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Read reads the automation.
func (d *AutomationDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg AutomationDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() || !requireClient(d.client, &resp.Diagnostics) {
		return
	}
	id := cfg.ID.ValueString()
	a, err := d.client.ReadAutomation(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", fmt.Sprintf("automation %s", id), err)
		return
	}
	m := AutomationDataSourceModel{cloudScope: cfg.cloudScope}
	m.fromAPI(ctx, a, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// computedDataAttributes turns resource attributes into read-only data
// source attributes with the same names, types, nesting and descriptions.
func computedDataAttributes(in map[string]rschema.Attribute) map[string]schema.Attribute {
	out := make(map[string]schema.Attribute, len(in))
	for name, a := range in {
		desc := a.GetMarkdownDescription()
		switch x := a.(type) {
		case rschema.StringAttribute:
			out[name] = schema.StringAttribute{Computed: true, MarkdownDescription: desc}
		case rschema.BoolAttribute:
			out[name] = schema.BoolAttribute{Computed: true, MarkdownDescription: desc}
		case rschema.Int64Attribute:
			out[name] = schema.Int64Attribute{Computed: true, MarkdownDescription: desc}
		case rschema.Float64Attribute:
			out[name] = schema.Float64Attribute{Computed: true, MarkdownDescription: desc}
		case rschema.DynamicAttribute:
			out[name] = schema.DynamicAttribute{Computed: true, MarkdownDescription: desc}
		case rschema.SetAttribute:
			out[name] = schema.SetAttribute{Computed: true, ElementType: x.ElementType, MarkdownDescription: desc}
		case rschema.ListAttribute:
			out[name] = schema.ListAttribute{Computed: true, ElementType: x.ElementType, MarkdownDescription: desc}
		case rschema.SingleNestedAttribute:
			out[name] = schema.SingleNestedAttribute{Computed: true, MarkdownDescription: desc,
				Attributes: computedDataAttributes(x.Attributes)}
		case rschema.ListNestedAttribute:
			out[name] = schema.ListNestedAttribute{Computed: true, MarkdownDescription: desc,
				NestedObject: schema.NestedAttributeObject{Attributes: computedDataAttributes(x.NestedObject.Attributes)}}
		default:
			panic(fmt.Sprintf("computedDataAttributes: %s is a %T, which it does not convert", name, a))
		}
	}
	return out
}

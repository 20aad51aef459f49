package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// idAttribute is the computed id every resource has.
func idAttribute(desc string) schema.StringAttribute {
	return schema.StringAttribute{
		Computed:            true,
		MarkdownDescription: desc,
		PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
	}
}

// createdAttribute is the creation time every resource reports.
func createdAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		Computed:            true,
		MarkdownDescription: "When the object was created (RFC 3339).",
		PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
	}
}

// updatedAttribute is the last-change time; it is unknown in a plan that
// changes the object.
func updatedAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		Computed:            true,
		MarkdownDescription: "When the object was last changed (RFC 3339).",
	}
}

// keepUpdatedWhenUnchanged plans the prior `updated` time when nothing else
// changes. The framework marks computed attributes unknown as soon as the
// configuration differs from state, before attribute plan modifiers run, so a
// JSON value that is only spelled differently (and planned as the prior
// value by jsonattr) would otherwise still plan an update of `updated` alone.
func keepUpdatedWhenUnchanged(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() {
		return
	}
	updated := path.Root("updated")
	var prior types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, updated, &prior)...)
	candidate := tfsdk.Plan{Schema: resp.Plan.Schema, Raw: resp.Plan.Raw.Copy()}
	resp.Diagnostics.Append(candidate.SetAttribute(ctx, updated, prior)...)
	if resp.Diagnostics.HasError() || !candidate.Raw.Equal(req.State.Raw) {
		return
	}
	resp.Plan = candidate
}

package jsonattr

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
)

// KeepString returns prior when it is a known JSON document semantically
// equal to server, and server otherwise. Create, Read and Update use it so the
// user's spelling of a document stays in state while the value is unchanged.
func KeepString(prior types.String, server string) types.String {
	if !prior.IsNull() && !prior.IsUnknown() && Equal(prior.ValueString(), server) {
		return prior
	}
	return types.StringValue(server)
}

// KeepDynamic returns prior when it holds a known value semantically equal to
// the decoded JSON value server, and server converted to a Terraform value
// otherwise.
func KeepDynamic(prior types.Dynamic, server any) types.Dynamic {
	if !prior.IsNull() && !prior.IsUnknown() {
		if p, err := FromAttr(prior); err == nil && EqualValues(p, server) {
			return prior
		}
	}
	return types.DynamicValue(ToAttr(server))
}

// FromAttr converts a known Terraform value (a string, number, bool, list,
// set, tuple, map or object, possibly inside a dynamic value) to a decoded JSON
// value; numbers become json.Number.
func FromAttr(v attr.Value) (any, error) {
	if v == nil || v.IsNull() {
		return nil, nil
	}
	if v.IsUnknown() {
		return nil, fmt.Errorf("value is not known yet")
	}
	switch x := v.(type) {
	case basetypes.DynamicValue:
		return FromAttr(x.UnderlyingValue())
	case basetypes.StringValue:
		return x.ValueString(), nil
	case basetypes.BoolValue:
		return x.ValueBool(), nil
	case basetypes.NumberValue:
		return number(x.ValueBigFloat()), nil
	case basetypes.Int64Value:
		return json.Number(fmt.Sprint(x.ValueInt64())), nil
	case basetypes.Float64Value:
		return number(big.NewFloat(x.ValueFloat64())), nil
	case basetypes.ListValue:
		return fromElements(x.Elements())
	case basetypes.SetValue:
		return fromElements(x.Elements())
	case basetypes.TupleValue:
		return fromElements(x.Elements())
	case basetypes.MapValue:
		return fromAttributes(x.Elements())
	case basetypes.ObjectValue:
		return fromAttributes(x.Attributes())
	}
	return nil, fmt.Errorf("a %s cannot be represented as JSON", v.Type(context.Background()))
}

func number(f *big.Float) json.Number {
	if f.IsInt() {
		i, _ := f.Int(nil)
		return json.Number(i.String())
	}
	return json.Number(f.Text('g', -1))
}

func fromElements(elems []attr.Value) (any, error) {
	out := make([]any, len(elems))
	for i, e := range elems {
		v, err := FromAttr(e)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

func fromAttributes(attrs map[string]attr.Value) (any, error) {
	out := make(map[string]any, len(attrs))
	for k, e := range attrs {
		v, err := FromAttr(e)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// ToAttr converts a decoded JSON value to the Terraform value HCL would give
// the same literal: strings, numbers and bools as themselves, arrays as
// tuples, objects as objects, null as a null dynamic value.
func ToAttr(v any) attr.Value {
	ctx := context.Background()
	switch x := v.(type) {
	case nil:
		return types.DynamicNull()
	case string:
		return types.StringValue(x)
	case bool:
		return types.BoolValue(x)
	case json.Number:
		f, _, err := big.ParseFloat(x.String(), 10, 512, big.ToNearestEven)
		if err != nil {
			return types.StringValue(x.String())
		}
		return types.NumberValue(f)
	case float64:
		return types.NumberValue(big.NewFloat(x))
	case []any:
		elems := make([]attr.Value, len(x))
		elemTypes := make([]attr.Type, len(x))
		for i, e := range x {
			elems[i] = ToAttr(e)
			elemTypes[i] = elems[i].Type(ctx)
		}
		return types.TupleValueMust(elemTypes, elems)
	case map[string]any:
		attrs := make(map[string]attr.Value, len(x))
		attrTypes := make(map[string]attr.Type, len(x))
		for k, e := range x {
			attrs[k] = ToAttr(e)
			attrTypes[k] = attrs[k].Type(ctx)
		}
		return types.ObjectValueMust(attrTypes, attrs)
	}
	return types.StringValue(fmt.Sprint(v))
}

// StringPlan returns a plan modifier for a JSON string attribute: when the
// configured document is semantically equal to the one in state, the plan
// keeps the state's spelling, so reformatting (or an import, which stores the
// server's spelling) plans no change. Terraform accepts a planned value equal
// to the prior state in place of an equivalent configured one.
func StringPlan() planmodifier.String { return stringPlan{} }

type stringPlan struct{}

func (stringPlan) Description(context.Context) string {
	return "Keeps the value in state when the configured JSON is semantically equal to it."
}

func (m stringPlan) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (stringPlan) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() || req.StateValue.IsNull() || req.StateValue.IsUnknown() {
		return
	}
	if Equal(req.ConfigValue.ValueString(), req.StateValue.ValueString()) {
		resp.PlanValue = req.StateValue
	}
}

// DynamicPlan is StringPlan for a dynamic attribute holding any JSON value:
// a list in configuration equals a tuple in state, 1 equals 1.0.
func DynamicPlan() planmodifier.Dynamic { return dynamicPlan{} }

type dynamicPlan struct{}

func (dynamicPlan) Description(context.Context) string {
	return "Keeps the value in state when the configured value is semantically equal to it as JSON."
}

func (m dynamicPlan) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (dynamicPlan) PlanModifyDynamic(_ context.Context, req planmodifier.DynamicRequest, resp *planmodifier.DynamicResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnderlyingValueUnknown() || req.StateValue.IsNull() || req.StateValue.IsUnknown() {
		return
	}
	c, err := FromAttr(req.ConfigValue)
	if err != nil {
		return
	}
	s, err := FromAttr(req.StateValue)
	if err == nil && EqualValues(c, s) {
		resp.PlanValue = req.StateValue
	}
}

// Object returns a validator that accepts a string holding one JSON object.
func Object() validator.String { return objectValidator{} }

type objectValidator struct{}

func (objectValidator) Description(context.Context) string { return "must be a JSON object" }

func (v objectValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (objectValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := DecodeObject(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.Append(diag.NewAttributeErrorDiagnostic(req.Path, "Invalid JSON object",
			fmt.Sprintf("%s %s. Write it with jsonencode({...}) or file(\"template.json\").", req.Path, err)))
	}
}

package jsonattr

import (
	"encoding/json"
	"math/big"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"identical", `{"a":1}`, `{"a":1}`, true},
		{"whitespace", "{\n  \"a\": [1, 2]\n}", `{"a":[1,2]}`, true},
		{"key order", `{"a":1,"b":{"c":2,"d":3}}`, `{"b":{"d":3,"c":2},"a":1}`, true},
		{"string escapes", `{"s":"\u00e9\/"}`, `{"s":"é/"}`, true},
		{"integer and float spelling", `{"n":1}`, `{"n":1.0}`, true},
		{"exponent as the server re-encodes it", `{"n":1e3}`, `{"n":1000}`, true},
		{"trailing zero", `[2.50]`, `[2.5]`, true},
		{"negative exponent", `0.1`, `1E-1`, true},
		{"big integers stay exact", `12345678901234567890`, `12345678901234567891`, false},
		{"big integers equal", `12345678901234567890`, `12345678901234567890.0`, true},
		{"different numbers", `{"n":1}`, `{"n":2}`, false},
		{"number and string", `{"n":1}`, `{"n":"1"}`, false},
		{"added key is drift", `{"a":1}`, `{"a":1,"b":2}`, false},
		{"removed key is drift", `{"a":1,"b":2}`, `{"a":1}`, false},
		{"null is not absent", `{"a":null}`, `{}`, false},
		{"null equals null", `{"a":null}`, `{"a":null}`, true},
		{"array order matters", `[1,2]`, `[2,1]`, false},
		{"array length", `[1]`, `[1,1]`, false},
		{"bool", `true`, `true`, true},
		{"bool and number", `true`, `1`, false},
		{"empty object and array", `{}`, `[]`, false},
		{"invalid left", `{`, `{}`, false},
		{"invalid right", `{}`, `{} x`, false},
		{"nested template", `{"job_configuration":{"command":"{{ command }}"},"variables":{"properties":{"command":{"type":"string","default":null}}}}`,
			`{"variables":{"properties":{"command":{"default":null,"type":"string"}}},"job_configuration":{"command":"{{ command }}"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Equal(tt.a, tt.b); got != tt.want {
				t.Errorf("Equal(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := Equal(tt.b, tt.a); got != tt.want {
				t.Errorf("Equal(%s, %s) = %v, want %v (not symmetric)", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

func TestDecodeObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		doc     string
		wantErr bool
	}{
		{`{}`, false},
		{` {"a": [1]} `, false},
		{`[]`, true},
		{`"s"`, true},
		{`null`, true},
		{`{"a":1}{"b":2}`, true},
		{``, true},
	}
	for _, tt := range tests {
		if _, err := DecodeObject(tt.doc); (err != nil) != tt.wantErr {
			t.Errorf("DecodeObject(%q) error = %v, want error %v", tt.doc, err, tt.wantErr)
		}
	}
}

func TestEncode_sortedCompactNoHTMLEscape(t *testing.T) {
	t.Parallel()
	v, err := Decode(`{"b": "<x> & y", "a": [1.50, {"d": 1, "c": null}]}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Encode(v)
	if want := `{"a":[1.50,{"c":null,"d":1}],"b":"<x> & y"}`; err != nil || got != want {
		t.Errorf("Encode = %s, %v; want %s", got, err, want)
	}
}

func TestFromAttr_ToAttr_roundTrip(t *testing.T) {
	t.Parallel()
	tests := []string{
		`"text"`, `42`, `-0.125`, `true`, `null`, `[]`, `{}`,
		`[1, "a", true, null, {"k": [2]}]`,
		`{"region": "eu", "limits": {"cpu": 1.5, "mem": 2048}, "tags": ["a", "b"]}`,
		`123456789012345678901234567890`,
	}
	for _, doc := range tests {
		v, err := Decode(doc)
		if err != nil {
			t.Fatal(err)
		}
		back, err := FromAttr(ToAttr(v))
		if err != nil || !EqualValues(v, back) {
			t.Errorf("round trip of %s = %#v, %v", doc, back, err)
		}
	}
}

func TestFromAttr_collectionsAndNumbers(t *testing.T) {
	t.Parallel()
	list := types.ListValueMust(types.StringType, []attr.Value{types.StringValue("a"), types.StringValue("b")})
	obj := types.MapValueMust(types.NumberType, map[string]attr.Value{"x": types.NumberValue(big.NewFloat(0.5))})
	tests := []struct {
		name string
		in   attr.Value
		want string
	}{
		{"list equals tuple JSON", types.DynamicValue(list), `["a","b"]`},
		{"map equals object JSON", obj, `{"x":0.5}`},
		{"integral number", types.NumberValue(big.NewFloat(1000)), `1000`},
		{"int64", types.Int64Value(-3), `-3`},
		{"null dynamic", types.DynamicNull(), `null`},
	}
	for _, tt := range tests {
		got, err := FromAttr(tt.in)
		want, _ := Decode(tt.want)
		if err != nil || !EqualValues(got, want) {
			t.Errorf("%s: FromAttr = %#v, %v; want %s", tt.name, got, err, tt.want)
		}
	}
	if _, err := FromAttr(types.StringUnknown()); err == nil {
		t.Error("FromAttr(unknown) succeeded; want an error")
	}
}

func TestKeepString(t *testing.T) {
	t.Parallel()
	prior := types.StringValue("{\n  \"a\": 1.0\n}")
	if got := KeepString(prior, `{"a":1}`); got != prior {
		t.Errorf("equal document: got %s, want the prior spelling", got)
	}
	if got := KeepString(prior, `{"a":2}`); got.ValueString() != `{"a":2}` {
		t.Errorf("changed document: got %s, want the server's", got)
	}
	if got := KeepString(types.StringNull(), `{}`); got.ValueString() != `{}` {
		t.Errorf("null prior: got %s, want the server's", got)
	}
}

func TestKeepDynamic(t *testing.T) {
	t.Parallel()
	prior := types.DynamicValue(types.ListValueMust(types.NumberType, []attr.Value{types.NumberValue(big.NewFloat(1))}))
	if got := KeepDynamic(prior, []any{json.Number("1.0")}); !got.Equal(prior) {
		t.Errorf("equal value: got %s, want the prior list", got)
	}
	got := KeepDynamic(prior, []any{json.Number("2")})
	if v, _ := FromAttr(got); !EqualValues(v, []any{json.Number("2")}) {
		t.Errorf("changed value: got %s, want [2]", got)
	}
}

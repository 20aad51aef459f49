package template

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	schema := `{"type": "object", "required": ["image"], "properties": {
		"image": {"type": "string"},
		"cpu": {"type": "integer", "default": 1024},
		"memory": {"type": "string", "pattern": "^\\d+Mi$"},
		"launch_type": {"type": "string", "enum": ["FARGATE", "EC2"], "default": "FARGATE"},
		"env": {"type": "object", "additionalProperties": {"type": "string"}},
		"strategy": {"type": "array", "items": {"$ref": "#/definitions/Provider"}},
		"timeout": {"type": "integer", "exclusiveMinimum": 0}
	}, "definitions": {"Provider": {"type": "object", "required": ["name", "weight"], "properties": {"name": {"type": "string"}, "weight": {"type": "integer"}}}}}`
	tests := []struct {
		name         string
		vars         string
		wantVariable string
		wantPath     string
		wantReason   string
	}{
		{name: "valid", vars: `{"image": "app", "cpu": null, "env": {"A": "1"}}`},
		{name: "extra variables are allowed", vars: `{"image": "app", "other": [1]}`},
		{name: "missing required", vars: `{"cpu": 1}`, wantVariable: "image", wantReason: "it is required and has no value"},
		{name: "wrong type", vars: `{"image": "app", "cpu": "1024"}`, wantVariable: "cpu", wantReason: "got string, want integer or null"},
		{name: "enum", vars: `{"image": "app", "launch_type": "SPOT"}`, wantVariable: "launch_type", wantReason: "value must be one of 'FARGATE', 'EC2'"},
		{name: "pattern without the value", vars: `{"image": "app", "memory": "s3cr3t"}`, wantVariable: "memory", wantReason: `does not match the pattern "^\\d+Mi$"`},
		{name: "nested env value", vars: `{"image": "app", "env": {"PORT": 8080}}`, wantVariable: "env", wantPath: "env.PORT", wantReason: "got number, want string"},
		{name: "nested list item", vars: `{"image": "app", "strategy": [{"name": "a", "weight": 1}, {"name": "b"}]}`, wantVariable: "strategy", wantPath: "strategy[1]", wantReason: "missing property 'weight'"},
		{name: "bound", vars: `{"image": "app", "timeout": 0}`, wantVariable: "timeout", wantReason: "must be greater than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Validate(mustJSON(t, schema), mustJSON(t, tt.vars), "ecs-prod", "nightly")
			if tt.wantVariable == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if ve.Variable != tt.wantVariable || ve.Path != tt.wantPath || ve.Reason != tt.wantReason {
				t.Errorf("Validate = {Variable: %q, Path: %q, Reason: %q}, want {%q, %q, %q}",
					ve.Variable, ve.Path, ve.Reason, tt.wantVariable, tt.wantPath, tt.wantReason)
			}
			msg := err.Error()
			for _, part := range []string{`"` + tt.wantVariable + `"`, `"ecs-prod"`, `"nightly"`, "job_variables"} {
				if !strings.Contains(msg, part) {
					t.Errorf("message %q does not mention %s", msg, part)
				}
			}
			if strings.Contains(msg, "s3cr3t") {
				t.Errorf("message %q quotes the value", msg)
			}
		})
	}
}

func TestValidate_Schema(t *testing.T) {
	t.Parallel()
	if err := Validate(nil, map[string]any{"anything": 1}, "p", "d"); err != nil {
		t.Errorf("Validate without a schema: %v", err)
	}
	err := Validate(mustJSON(t, `{"type": "object", "properties": {"image": {"type": "strung"}}}`), nil, "pool", "dep")
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Variable != "" || ve.Path != "/properties/image/type" || ve.Fix != fixSchema {
		t.Fatalf("Validate = %#v, want a schema error at /properties/image/type", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `work pool "pool"`) || !strings.Contains(msg, `deployment "dep"`) {
		t.Errorf("message %q does not name the pool and the deployment", msg)
	}
}

func TestValidate_InvalidDefaults(t *testing.T) {
	t.Parallel()
	// An invalid default is ignored, and then required is not enforced.
	schema := mustJSON(t, `{"type": "object", "required": ["image"], "properties": {"image": {"type": "string"}, "cpu": {"type": "integer", "default": "many"}}}`)
	if err := Validate(schema, map[string]any{}, "p", "d"); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestValidate_BlockDefaults(t *testing.T) {
	t.Parallel()
	schema := mustJSON(t, `{"type": "object", "required": ["creds"], "properties": {
		"creds": {"allOf": [{"$ref": "#/definitions/Creds"}], "default": {"$ref": {"block_document_id": "11111111-1111-4111-8111-111111111111"}}}},
		"definitions": {"Creds": {"title": "Creds", "type": "object", "block_type_slug": "creds", "properties": {"key": {"type": "string"}}}}}`)
	if err := Validate(schema, map[string]any{}, "p", "d"); err != nil {
		t.Errorf("Validate with a block default: %v", err)
	}
	if err := Validate(schema, mustJSON(t, `{"creds": {"key": "k"}}`), "p", "d"); err != nil {
		t.Errorf("Validate with block data: %v", err)
	}
	if err := Validate(schema, mustJSON(t, `{"creds": {"key": 1}}`), "p", "d"); err == nil {
		t.Error("Validate accepted block data of the wrong shape")
	}
}

func TestValidateDeployment(t *testing.T) {
	t.Parallel()
	schema := `{"type": "object", "required": ["image"], "additionalProperties": false, "properties": {
		"image": {"type": "string"},
		"cpu": {"type": "integer", "default": 1024},
		"strategy": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
	}}`
	tests := []struct {
		name         string
		vars         string
		wantVariable string
	}{
		{name: "no job variables", vars: `{}`},
		{name: "required left to the flow run", vars: `{"cpu": 2}`},
		{name: "nested required not enforced either", vars: `{"strategy": [{}]}`},
		{name: "wrong type", vars: `{"cpu": "lots"}`, wantVariable: "cpu"},
		{name: "unknown variable the schema forbids", vars: `{"gpu": 1}`, wantVariable: "gpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateDeployment(mustJSON(t, schema), mustJSON(t, tt.vars), "ecs-prod", "nightly")
			var ve *ValidationError
			switch {
			case tt.wantVariable == "" && err != nil:
				t.Fatalf("ValidateDeployment: %v", err)
			case tt.wantVariable != "" && (!errors.As(err, &ve) || ve.Variable != tt.wantVariable):
				t.Fatalf("ValidateDeployment = %v, want a *ValidationError for %q", err, tt.wantVariable)
			}
		})
	}
}

func TestValidationError_Error(t *testing.T) {
	t.Parallel()
	e := &ValidationError{Variable: "cpu", Path: "cpu", Pool: "p", Deployment: "d", Reason: "got string, want integer", Fix: fixValue}
	want := `job variable "cpu" at cpu of deployment "d" does not fit work pool "p": got string, want integer; ` + fixValue
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestPreprocessSchema(t *testing.T) {
	t.Parallel()
	in := mustJSON(t, `{"required": ["a"], "properties": {
		"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "null"}, "d": {"type": "integer", "default": 1},
		"t": {"type": "array", "items": [{"type": "string"}]}, "n": {"type": "object", "required": ["x"], "properties": {"x": {"type": "string"}, "y": {"type": "string"}}}
	}, "definitions": {"Creds": {"title": "AwsCreds", "block_type_slug": "aws", "properties": {"k": {"type": "string"}}}}}`)
	got, err := preprocessSchema(in, false)
	if err != nil {
		t.Fatal(err)
	}
	props := got["properties"].(map[string]any)
	checks := map[string]bool{
		"required a keeps its type":        props["a"].(map[string]any)["type"] == "string",
		"optional b accepts null":          props["b"].(map[string]any)["anyOf"] != nil,
		"null type untouched":              props["c"].(map[string]any)["type"] == "null",
		"default without allowNone kept":   props["d"].(map[string]any)["type"] == "integer",
		"tuple items become prefixItems":   props["t"].(map[string]any)["prefixItems"] != nil && props["t"].(map[string]any)["items"] == nil,
		"nested required x kept":           props["n"].(map[string]any)["properties"].(map[string]any)["x"].(map[string]any)["type"] == "string",
		"nested optional y accepts null":   props["n"].(map[string]any)["properties"].(map[string]any)["y"].(map[string]any)["anyOf"] != nil,
		"block definition added by title":  got["definitions"].(map[string]any)["AwsCreds"].(map[string]any)["oneOf"] != nil,
		"input not modified":               in["properties"].(map[string]any)["b"].(map[string]any)["type"] == "string",
		"definition properties preprocess": got["definitions"].(map[string]any)["Creds"].(map[string]any)["properties"].(map[string]any)["k"].(map[string]any)["anyOf"] != nil,
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("preprocessSchema: %s failed", name)
		}
	}
}

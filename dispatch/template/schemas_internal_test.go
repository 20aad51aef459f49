package template

import (
	"errors"
	"testing"
)

// TestSchemas_compilesOnceAndAgreesWithThePackageFunction: a Schemas
// compiles each schema variant once across runs, and decides exactly as
// ValidateFlowRun without one does.
func TestSchemas_compilesOnceAndAgreesWithThePackageFunction(t *testing.T) {
	schema := map[string]any{
		"type":     "object",
		"required": []any{"image"},
		"properties": map[string]any{
			"image": map[string]any{"type": "string"},
			"cpu":   map[string]any{"type": "integer", "default": 1024},
		},
		"additionalProperties": false,
	}
	var c Schemas
	for _, vars := range []map[string]any{
		{"image": "python:3.12"},
		{"image": "python:3.12", "cpu": "lots"},
		{"cpu": 512},
		{"image": "x", "unknown": true},
		{"image": "python:3.12"},
	} {
		want := ValidateFlowRun(schema, nil, vars, "pool", "dep")
		got := c.ValidateFlowRun(schema, nil, vars, "pool", "dep")
		var wv, gv *ValidationError
		if (want == nil) != (got == nil) || (want != nil && (!errors.As(want, &wv) || !errors.As(got, &gv) || *wv != *gv)) {
			t.Errorf("job variables %v: with Schemas %v, without %v", vars, got, want)
		}
	}
	if n := len(c.compiled); n == 0 || n > 3 {
		t.Errorf("%d schemas compiled for one pool's schema over 5 runs, want 1 to 3 (its variants)", n)
	}
}

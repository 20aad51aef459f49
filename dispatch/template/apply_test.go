package template

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestApplyValues(t *testing.T) {
	t.Parallel()
	values := map[string]any{
		"image": "repo/app",
		"cpu":   json.Number("1024"),
		"ratio": json.Number("0.5"),
		"on":    true,
		"none":  nil,
		"env":   map[string]any{"FOO": "bar"},
		"list":  []any{"a", "b"},
		"trick": "{{ image }}",
	}
	env := LookupEnv(func(name string) (string, bool) {
		if name == "REGION" {
			return "eu-west-1", true
		}
		return "", false
	})
	tests := []struct {
		name   string
		in     any
		want   any
		wantOK bool
	}{
		{"whole keeps type", "{{ cpu }}", json.Number("1024"), true},
		{"whole null is kept", "{{ none }}", nil, true},
		{"whole object", "{{ env }}", map[string]any{"FOO": "bar"}, true},
		{"whole dotted", "{{ env.FOO }}", "bar", true},
		{"whole missing is not set", "{{ missing }}", nil, false},
		{"embedded str()", "{{ cpu }}/{{ ratio }}/{{ on }}/{{ none }}/{{ list }}", "1024/0.5/True/None/['a', 'b']", true},
		{"embedded missing is empty", "a{{ missing }}b", "ab", true},
		{"env placeholder is a string", "{{ $REGION }}", "eu-west-1", true},
		{"missing env placeholder is empty", "{{ $NOPE }}", "", true},
		{"block and variable placeholders stay", "{{ prefect.blocks.secret.x }}-{{ prefect.variables.y }}-{{ image }}",
			"{{ prefect.blocks.secret.x }}-{{ prefect.variables.y }}-repo/app", true},
		{"single pass", "x{{ trick }}", "x{{ image }}", true},
		{"no placeholder", "plain", "plain", true},
		{"scalars pass", json.Number("3"), json.Number("3"), true},
		{"dict drops not set keys", map[string]any{"a": "{{ missing }}", "b": "{{ image }}", "{{ image }}": "k"},
			map[string]any{"b": "repo/app", "{{ image }}": "k"}, true},
		{"list drops not set items", []any{"{{ missing }}", "{{ cpu }}", []any{"{{ missing }}"}},
			[]any{json.Number("1024"), []any{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := applyValues(newPlaceholderFinder(), tt.in, values, env)
			if err != nil {
				t.Fatalf("applyValues: %v", err)
			}
			if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("applyValues(%#v) = %#v, %v; want %#v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestApplyValues_UnexpectedType(t *testing.T) {
	t.Parallel()
	if _, _, err := applyValues(newPlaceholderFinder(), struct{}{}, nil, nil); err == nil {
		t.Error("applyValues accepted a non-JSON value")
	}
}

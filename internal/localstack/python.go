package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// WorkerDefaultTemplate returns the default base job template of one of
// Prefect's worker classes, as the pinned Python package computes it
// (Worker.get_default_base_job_template()). worker is "module:Class", for
// example "prefect_aws.workers:ECSWorker". Numbers are json.Number, as the
// dispatcher decodes API responses.
func WorkerDefaultTemplate(ctx context.Context, worker string) (map[string]any, error) {
	module, class, ok := strings.Cut(worker, ":")
	if !ok {
		return nil, fmt.Errorf("worker %q: want module:Class", worker)
	}
	out, err := RunPython(ctx, fmt.Sprintf(
		"import json\nfrom %s import %s as W\nprint(json.dumps(W.get_default_base_job_template()))\n", module, class))
	if err != nil {
		return nil, fmt.Errorf("read the default base job template of %s: %w", worker, err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var tmpl map[string]any
	if err := dec.Decode(&tmpl); err != nil {
		return nil, fmt.Errorf("decode the default base job template of %s: %w", worker, err)
	}
	return tmpl, nil
}

// RunPython runs a Python program with the pinned virtualenv's interpreter
// and returns its standard output; on failure the error carries its
// standard error.
func RunPython(ctx context.Context, program string) ([]byte, error) {
	venv, err := Venv(ctx)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(venv, "bin", "python"), "-c", program)
	cmd.Env = ServerEnv(filepath.Join(venv, ".pushpool-python-home"), map[string]string{"PREFECT_LOGGING_LEVEL": "ERROR"})
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("python in %s: %w\n%s", venv, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

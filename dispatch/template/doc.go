// Package template renders a flow run's job configuration from a work pool's
// base_job_template exactly as Prefect 3 workers do (Prefect 3.9.1's
// BaseJobConfiguration), and validates job variables the way Prefect's server
// does, so a serverless dispatcher can stand in for a Python worker.
//
// The pipeline mirrors prefect.workers.base:
//
//   - [Render] is BaseJobConfiguration.resolve_for_flow_run up to and
//     including from_template_and_values: defaults from the variables schema,
//     deployment then flow-run job variables, env merging, dotted keys,
//     apply_values, block document references and Prefect variables, and the
//     pydantic coercion of the four generic fields (command, env, labels,
//     name).
//   - [Prepare] is BaseJobConfiguration.prepare_for_flow_run: the
//     dispatcher's settings and attribution environment, prefect.io/* labels,
//     the job name and the default command.
//   - [Validate] is prefect.server.api.validation's check of job variables
//     against the pool's variables schema for a flow run.
//
// # Values
//
// Every tree (templates, job variables, block data, variable values) is JSON
// decoded into map[string]any, []any, string, bool, nil and numbers. Decode with
// json.Decoder.UseNumber so that numbers keep their exact text and their
// integer-or-float nature: Prefect is Python, where the JSON number 5 renders
// as "5" and 5.0 as "5.0" inside a string. A float64 is accepted and treated
// as a Python float; int and int64 are accepted as Python ints.
//
// Only the generic BaseJobConfiguration is reproduced. Keys a pool-specific
// configuration class declares (ECS task definitions, Cloud Run containers)
// are rendered and kept as they are; validating and preparing them further is
// the job of each backend.
package template

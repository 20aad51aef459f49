"""Render job configuration cases with Prefect's own worker code.

The differential test in differential_test.go runs this with the pinned
virtualenv's python and PREFECT_API_URL pointing at a real Prefect server, so
block and variable placeholders are resolved by Prefect itself.

stdin: a JSON array of cases, each with
  name                      case name
  template                  the work pool's base_job_template
  flow_run, flow            API objects (FlowRun, Flow)
  deployment                API object (DeploymentResponse) or null
  work_pool                 API object (WorkPool)
  deployment_job_variables  dict (ignored without a deployment)
  flow_run_job_variables    dict
  worker_name, worker_id    the worker's identity

stdout: {"prefect_version": ..., "results": [...]}, one result per case with
  rendered    BaseJobConfiguration.from_template_and_values(...), dumped
  prepared    the same after prepare_for_flow_run(...), dumped
  error       "ExceptionType: message" when Prefect raised, else null
  validation  {"valid": bool, "error": str|null} from the server's
              _validate_work_pool_job_variables, or {"crash": str}
"""

import asyncio
import copy
import json
import sys
import uuid

from fastapi import HTTPException
from pydantic import ConfigDict

import prefect
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import Flow, FlowRun, WorkPool
from prefect.client.schemas.responses import DeploymentResponse
from prefect.server.api.validation import _validate_work_pool_job_variables
from prefect.utilities.schema_tools import ValidationError as SchemaValidationError
from prefect.workers.base import BaseJobConfiguration

# The configuration rendered by the last from_template_and_values call.
_RENDERED = []


class JobConfiguration(BaseJobConfiguration):
    """The generic BaseJobConfiguration, keeping every rendered key.

    A pool-specific worker declares its extra keys as fields; allowing extras
    keeps them in the dump the same way, without any pool-specific coercion.
    """

    model_config = ConfigDict(extra="allow")

    @classmethod
    async def from_template_and_values(cls, base_job_template, values, client=None):
        config = await super().from_template_and_values(
            base_job_template=base_job_template, values=values, client=client
        )
        _RENDERED.append(config.model_dump(mode="json"))
        return config


class CaseClient:
    """The real client, except that the flow and deployment come from the case."""

    def __init__(self, client, flow, deployment):
        self._client = client
        self._flow = flow
        self._deployment = deployment

    async def read_flow(self, flow_id):
        return self._flow

    async def read_deployment(self, deployment_id):
        return self._deployment

    def __getattr__(self, name):
        return getattr(self._client, name)


def describe(exc):
    return f"{type(exc).__name__}: {exc}"


async def render(client, case):
    flow_run_data = dict(case["flow_run"])
    flow_run_data["job_variables"] = copy.deepcopy(case.get("flow_run_job_variables") or {})
    flow_run = FlowRun.model_validate(flow_run_data)
    flow = Flow.model_validate(case["flow"])
    deployment = None
    if case.get("deployment") is not None:
        deployment_data = dict(case["deployment"])
        deployment_data["job_variables"] = copy.deepcopy(case.get("deployment_job_variables") or {})
        deployment = DeploymentResponse.model_validate(deployment_data)
    work_pool_data = dict(case["work_pool"])
    work_pool_data["base_job_template"] = copy.deepcopy(case["template"])
    work_pool = WorkPool.model_validate(work_pool_data)

    result = {"name": case["name"], "rendered": None, "prepared": None, "error": None}
    _RENDERED.clear()
    try:
        configuration = await JobConfiguration.resolve_for_flow_run(
            flow_run,
            client=CaseClient(client, flow, deployment),
            work_pool=work_pool,
            worker_name=case.get("worker_name"),
            worker_id=uuid.UUID(case["worker_id"]) if case.get("worker_id") else None,
            deployment=deployment,
        )
        result["prepared"] = configuration.model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001 - every failure is a result
        result["error"] = describe(exc)
    if _RENDERED:
        result["rendered"] = _RENDERED[-1]

    result["validation"] = await validate(case, work_pool)
    return result


async def validate(case, work_pool):
    """What the server decides when a flow run is created for the deployment."""
    deployment_vars = copy.deepcopy(case.get("deployment_job_variables") or {})
    if case.get("deployment") is None:
        deployment_vars = {}
    try:
        await _validate_work_pool_job_variables(
            None,  # the session is only used to hydrate "$ref" defaults
            work_pool.name,
            copy.deepcopy(case["template"]),
            deployment_vars,
            copy.deepcopy(case.get("flow_run_job_variables") or {}),
            ignore_required=False,
            ignore_invalid_defaults=True,
        )
    except (SchemaValidationError, HTTPException) as exc:
        return {"valid": False, "error": describe(exc)}
    except Exception as exc:  # noqa: BLE001
        return {"crash": describe(exc)}
    return {"valid": True, "error": None}


async def main():
    cases = json.load(sys.stdin)
    async with get_client() as client:
        results = [await render(client, case) for case in cases]
    json.dump({"prefect_version": prefect.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())

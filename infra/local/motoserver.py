"""moto's AWS server on 127.0.0.1 with pushpool's test controls.

    python motoserver.py PORT

Serves moto's WSGI application (every service moto emulates: ECS, EC2,
Secrets Manager, SQS...) and, under /_pushpool/, routes that act on moto's
in-memory ECS backend the way AWS itself would behave behind a client's back:

  GET    /_pushpool/health                 200 when the server is up
  POST   /_pushpool/task/stop              {"task": ARN, "exitCode": int|null,
                                            "stopCode": str, "stoppedReason": str,
                                            "containerReason": str,
                                            "noContainers": bool}
                                           the task is STOPPED as AWS reports a
                                           finished container (noContainers: with
                                           none, as after TaskFailedToStart)
  POST   /_pushpool/task/forget            {"task": ARN} AWS forgot the task:
                                           DescribeTasks no longer returns it
  GET    /_pushpool/tasks?startedBy=X      {"taskArns": [...]} every task moto
                                           holds with that startedBy, any status
  GET    /_pushpool/tasks?startedByPrefix=X  likewise, every task whose startedBy
                                           starts with X (a flow run id: the
                                           tasks of all its attempts)
  POST   /_pushpool/fault                  {"action": "RunTask", "times": n
                                           (negative: until cleared), "status":
                                           400, "type": "ThrottlingException",
                                           "message": "...", "body": {...}}
                                           answers the next n requests whose
                                           X-Amz-Target ends in .<action> with
                                           an AWS JSON 1.1 error (or, with
                                           "body", that JSON with the status)
  DELETE /_pushpool/fault                  clears every fault

Tasks stay RUNNING until stopped: moto's default state manager would walk a
task to STOPPED after a few DescribeTasks calls, which no real task does.

RunTask's clientToken, which moto ignores, behaves as on AWS (see "Ensuring
idempotency" in the ECS API reference): a RunTask whose JSON body carries a
clientToken already used in the same account (access key), region and
cluster within 24 hours is answered with the first request's response and
starts nothing, when its parameters are the same; with other parameters it
gets a ConflictException whose resourceIds are the first request's task
ARNs. Requests with one token are serialised, so concurrent ones start one
task. Only a 200 response that started a task uses the token up: errors and
responses with failures only leave it free for the next request. Injected
faults answer before this check, as AWS refusing a call.
"""

import datetime
import io
import json
import re
import sys
import threading
import time
import urllib.parse

from moto.moto_api import state_manager
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

PREFIX = "/_pushpool/"

# How long AWS keeps a RunTask clientToken.
CLIENT_TOKEN_TTL = 24 * 60 * 60

CREDENTIAL = re.compile(r"Credential=([^/,]+)/[^/,]+/([^/,]+)/")


class Controls:
    """The /_pushpool/ routes wrapped around moto's WSGI application."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.faults = []
        # RunTask client tokens: (access key, region, cluster, token) -> a
        # lock serialising its requests, and the first successful request
        # with its response.
        self.token_locks = {}
        self.tokens = {}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            try:
                status, body = self.control(environ, path[len(PREFIX):])
            except Exception as exc:  # report, never kill the server
                status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
            return self.reply(start_response, status, body, {})
        fault = self.take_fault(environ.get("HTTP_X_AMZ_TARGET", ""))
        if fault is not None:
            if "body" in fault:
                return self.reply(start_response, fault.get("status", 200), fault["body"], {})
            return self.reply(
                start_response,
                fault.get("status", 400),
                {"__type": fault["type"], "message": fault.get("message", "")},
                {"x-amzn-ErrorType": fault["type"]},
            )
        if environ.get("HTTP_X_AMZ_TARGET", "").endswith(".RunTask"):
            return self.run_task(environ, start_response)
        return self.app(environ, start_response)

    def run_task(self, environ, start_response):
        """RunTask with AWS's clientToken idempotency (module docstring)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            return self.app(environ, start_response)
        token = req.get("clientToken") if isinstance(req, dict) else None
        if not isinstance(token, str) or not token:
            return self.app(environ, start_response)
        key = (*caller(environ), cluster_name(req.get("cluster")), token)
        with self.lock:
            token_lock = self.token_locks.setdefault(key, threading.Lock())
        with token_lock:
            first = self.tokens.get(key)
            if first is not None and time.monotonic() - first["at"] < CLIENT_TOKEN_TTL:
                if first["request"] != req:
                    return self.reply(
                        start_response,
                        400,
                        {
                            "__type": "ConflictException",
                            "message": "The clientToken is already in use with a different RunTask request.",
                            "resourceIds": first["taskArns"],
                        },
                        {"x-amzn-ErrorType": "ConflictException"},
                    )
                start_response(first["status"], first["headers"])
                return [first["body"]]
            status, headers, body = forward(self.app, environ)
            if status.startswith("200 "):
                arns = [t.get("taskArn") for t in json.loads(body or b"{}").get("tasks") or []]
                if arns:
                    self.tokens[key] = {
                        "request": req,
                        "status": status,
                        "headers": headers,
                        "body": body,
                        "taskArns": arns,
                        "at": time.monotonic(),
                    }
        start_response(status, headers)
        return [body]

    @staticmethod
    def reply(start_response, status, body, headers):
        data = json.dumps(body).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}.get(status, "Status")
        start_response(
            f"{status} {reason}",
            [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data)))]
            + list(headers.items()),
        )
        return [data]

    def take_fault(self, target):
        if not target:
            return None
        action = target.rsplit(".", 1)[-1]
        with self.lock:
            for fault in self.faults:
                if fault["action"] == action and fault["times"] != 0:
                    if fault["times"] > 0:
                        fault["times"] -= 1
                    return fault
        return None

    def control(self, environ, route):
        method = environ["REQUEST_METHOD"]
        if route == "health":
            return 200, {"ok": True}
        if route == "fault" and method == "DELETE":
            with self.lock:
                self.faults.clear()
            return 200, {}
        if route == "tasks" and method == "GET":
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            if "startedByPrefix" in query:
                prefix = query["startedByPrefix"][0]
                arns = [t.task_arn for t in all_tasks() if (t.started_by or "").startswith(prefix)]
            else:
                started_by = query.get("startedBy", [""])[0]
                arns = [t.task_arn for t in all_tasks() if t.started_by == started_by]
            return 200, {"taskArns": arns}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        req = json.loads(environ["wsgi.input"].read(length) or b"{}")
        if route == "fault" and method == "POST":
            fault = dict(req)
            fault.setdefault("times", 1)
            with self.lock:
                self.faults.append(fault)
            return 200, {}
        if route == "task/stop" and method == "POST":
            return stop_task(req)
        if route == "task/forget" and method == "POST":
            return forget_task(req["task"])
        return 404, {"error": f"no control route {method} {PREFIX}{route}"}


def forward(app, environ):
    """Call the WSGI app and return its status line, headers and whole body."""
    captured = {}
    chunks = []

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, list(headers)
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return captured["status"], captured["headers"], b"".join(chunks)


def caller(environ):
    """The access key and region a signed request names."""
    m = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return (m.group(1), m.group(2)) if m else ("", "")


def cluster_name(cluster):
    """A cluster's name, from its name or ARN; "default" when unset."""
    if not cluster:
        return "default"
    return cluster.split(":cluster/", 1)[-1]


def ecs_backends_in_use():
    from moto.ecs.models import ecs_backends

    for _, regions in list(ecs_backends.items()):
        for _, backend in list(regions.items()):
            yield backend


def all_tasks():
    for backend in ecs_backends_in_use():
        for cluster_tasks in list(backend.tasks.values()):
            yield from list(cluster_tasks.values())


def find_task(arn):
    for backend in ecs_backends_in_use():
        for cluster_tasks in backend.tasks.values():
            if arn in cluster_tasks:
                return cluster_tasks, cluster_tasks[arn]
    return None, None


def stop_task(req):
    _, task = find_task(req["task"])
    if task is None:
        return 404, {"error": f"no task {req['task']}"}
    if req.get("noContainers"):
        task.containers = []
    mark_stopped(
        task,
        req.get("exitCode"),
        req.get("stopCode") or "EssentialContainerExited",
        req.get("stoppedReason") or "Essential container in task exited",
        req.get("containerReason"),
    )
    return 200, {}


def mark_stopped(task, exit_code, stop_code, stopped_reason, container_reason):
    """Make a task STOPPED the way DescribeTasks shows a finished task."""
    now = datetime.datetime.now(datetime.timezone.utc)
    task.last_status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stop_code = stop_code
    task.stopped_reason = stopped_reason
    task.stopping_at = now
    task.stopped_at = now
    task.execution_stopped_at = now
    for container in task.containers:
        container.last_status = "STOPPED"
        container.exitCode = exit_code
        if container_reason:
            container.reason = container_reason


def forget_task(arn):
    cluster_tasks, task = find_task(arn)
    if task is None:
        return 404, {"error": f"no task {arn}"}
    del cluster_tasks[arn]
    return 200, {}


def patch_moto():
    """Work around moto 5.2.5 gaps that real ECS does not have."""
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def requirements(task_definition):
        # A Fargate task definition may set memory at task level only; moto
        # adds up container memory and fails on the missing values.
        saved = [dict(c) for c in task_definition.container_definitions]
        for c in task_definition.container_definitions:
            if c.get("memory") is None and c.get("memoryReservation") is None:
                c["memory"] = 0
        try:
            return original(task_definition)
        finally:
            task_definition.container_definitions[:] = saved

    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(requirements)

    # A running container has no exit code yet; moto reports 0 from the start.
    from moto.ecs.models import Container

    container_init = Container.__init__

    def init(self, *args, **kwargs):
        container_init(self, *args, **kwargs)
        self.exitCode = None

    Container.__init__ = init

    # StopTask on AWS sends SIGTERM: the task stops with stopCode
    # UserInitiated and its containers exit with 143. moto only flips the
    # status.
    original_stop = EC2ContainerServiceBackend.stop_task

    def stop(self, cluster_str, task_str, reason):
        task = original_stop(self, cluster_str, task_str, reason)
        mark_stopped(task, 143, "UserInitiated", reason or "Task stopped by user", None)
        return task

    EC2ContainerServiceBackend.stop_task = stop


def main():
    patch_moto()
    port = int(sys.argv[1])
    # A task stays in its state until something (StopTask, a control route)
    # changes it, as on AWS; moto's default advances it on every describe.
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 1_000_000_000})
    app = Controls(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"motoserver: listening on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

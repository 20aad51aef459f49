"""A stand-in flow run for dispatcher tests: records that it started, then
reports Running and Completed for its flow run through the Prefect API, as
the flow engine would. Standard library only, so hundreds start quickly.

usage: complete_run.py STARTS_FILE [SECONDS]
SECONDS (default 0) is how long it stays Running before it completes.
With FAIL_FIRST=1 in its environment, the first start of a flow run (none
recorded in STARTS_FILE yet) exits 1 without reporting a state, as a
process that dies would; later starts complete."""
import json
import os
import sys
import time
import urllib.error
import urllib.request

api = os.environ["PREFECT_API_URL"]
run_id = os.environ["PREFECT__FLOW_RUN_ID"]

try:
    with open(sys.argv[1]) as starts:
        started_before = run_id in starts.read()
except FileNotFoundError:
    started_before = False

with open(sys.argv[1], "a") as starts:  # one short line: appends do not interleave
    starts.write(run_id + "\n")

if os.environ.get("FAIL_FIRST") == "1" and not started_before:
    sys.exit(1)

seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0

for state in ("RUNNING", "COMPLETED"):
    if state == "COMPLETED":
        time.sleep(seconds)
    body = json.dumps({"state": {"type": state}, "force": True}).encode()
    req = urllib.request.Request(f"{api}/flow_runs/{run_id}/set_state", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    for attempt in range(10):  # a busy SQLite server answers 503: retry, as Prefect's client does
        try:
            urllib.request.urlopen(req, timeout=30).read()
            break
        except (urllib.error.HTTPError, urllib.error.URLError) as exc:
            if attempt == 9 or getattr(exc, "code", 503) < 500:
                raise
            time.sleep(0.2 * 2**attempt)

"""A small flow for pushpool's demo: a few tasks, a parameter, logs.

`make demo` deploys it to a local `process` pool with a pull step that sets
the working directory to this folder, the way `prefect deploy` does for
local code, and pushpool starts each scheduled run with
`prefect flow-run execute`, exactly as Prefect's process worker would.
"""

import platform
import time

from prefect import flow, get_run_logger, task


@task
def greet(name: str) -> str:
    return f"Hello, {name}!"


@task
def measure(seconds: float) -> float:
    start = time.monotonic()
    time.sleep(seconds)
    return round(time.monotonic() - start, 2)


@flow(log_prints=True)
def hello(name: str = "pushpool", work_seconds: float = 1.0) -> str:
    logger = get_run_logger()
    message = greet(name)
    print(message)
    slept = measure(work_seconds)
    logger.info("worked %.2fs on %s (Python %s)", slept, platform.node(), platform.python_version())
    return message


if __name__ == "__main__":
    hello()

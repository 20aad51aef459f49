"""A real Prefect flow for the attempt tests: it records each start in a
file, then suspends itself (its process exits) until it is resumed, when
it runs again on new infrastructure and completes."""

from prefect import flow
from prefect.flow_runs import suspend_flow_run


@flow
def suspender(marks: str) -> None:
    with open(marks, "a") as f:
        f.write("start\n")
    suspend_flow_run(timeout=300)

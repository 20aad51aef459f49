"""A real Prefect flow for the reconciler's heartbeat tests: it sleeps, so
that the test can watch its heartbeats arrive, or freeze it."""

import time

from prefect import flow


@flow
def sleepy(seconds: float = 300) -> None:
    time.sleep(seconds)

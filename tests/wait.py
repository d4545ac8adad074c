"""Waiting for a condition instead of sleeping a fixed time: the tests share a loaded 2-core CI
machine, where a fixed sleep is either too short (a flake) or always too long (a slow suite)."""
from __future__ import annotations

import asyncio
import inspect
import os
import time

# Seconds a condition may take before the test fails. It only costs time when something is broken:
# a wait returns as soon as its condition holds. SINGULARITY_TEST_BUDGET scales it on slower machines.
BUDGET = float(os.environ.get("SINGULARITY_TEST_BUDGET", "60"))


async def wait_until(predicate, timeout: float | None = None, interval: float = 0.05, what: str = "the condition"):
    """Poll `predicate` (a function returning a value or an awaitable) until it is truthy; return that."""
    budget = BUDGET if timeout is None else timeout
    deadline = time.monotonic() + budget
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {budget:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def wait_until_sync(predicate, timeout: float | None = None, interval: float = 0.05, what: str = "the condition"):
    budget = BUDGET if timeout is None else timeout
    deadline = time.monotonic() + budget
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {budget:.0f}s waiting for {what}")
        time.sleep(interval)
    return value

"""Every API operation, fed input generated from its own OpenAPI schema (schemathesis), valid
and invalid, never answers 5xx: bad input is a 4xx envelope, on each database."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from memberhub.wsgi import application

# Examples per operation and mode: ~40 s for the ~100 operations on either database here.
EXAMPLES = 10

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_no_operation_answers_5xx_to_generated_input(make_key: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {make_key()}"}  # every capability: the handlers run
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                response = case.call(headers=headers)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.path} -> {response.status_code}: "
                                    f"path {case.path_parameters} query {case.query} body {str(case.body)[:120]}")

            with contextlib.suppress(Unsatisfiable):  # no input of this mode (an operation without parameters)
                call()
    assert operations > 90  # the schema was read whole
    assert not failures, "\n".join(failures[:20])

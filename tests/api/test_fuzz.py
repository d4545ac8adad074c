"""Schemathesis against each live service (preparation, deal making, hosting, ranking, replication): every
operation gets generated requests, valid and invalid, and every answer must be a non-5xx with a
declared status, content type and schema.

`positive_data_acceptance` is the one check left out: it expects schema-valid data to be accepted,
and rules no schema can say (a dataset path that exists, a power-of-two size, an address checksum)
refuse most of it, on purpose, with a 400 that names the field."""
from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from shared import config as config_module
from shared import openapi
from tests.api.conftest import TOKEN, build

# Per operation: enough for every mutation kind to come up, few enough for `make test` (set
# FUZZ_EXAMPLES higher for a longer hunt).
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))


def _schema(service: str):
    # The document of the service as it runs in `live` (api_token set), built without a server:
    # the parametrization happens at collection, before any fixture starts the services.
    app = build(service, config_module.parse({"connection": {"api_token": TOKEN}}))
    schema = schemathesis.openapi.from_dict(openapi.document(app))

    # Given as the schema's auth, not as headers of every call: schemathesis then leaves it out of
    # the cases whose point is a missing token (headers passed to the call would put it back, and
    # the 200 that follows would count as accepting an invalid request).
    @schema.auth()
    class Token:
        def get(self, case, context):
            return TOKEN

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return schema


def fuzz(case, live, service: str) -> None:
    live.fuzzed.count(f"{service} {case.operation.label}")
    case.call_and_validate(base_url=live.urls[service], excluded_checks=[positive_data_acceptance], timeout=60)
    assert live.server_errors == []


bounded = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@_schema("preparation").parametrize()
@bounded
def test_preparation_service(case, live):
    fuzz(case, live, "preparation")


@_schema("dealmaking").parametrize()
@bounded
def test_deal_making_service(case, live):
    fuzz(case, live, "dealmaking")


@_schema("hosting").parametrize()
@bounded
def test_hosting_service(case, live):
    fuzz(case, live, "hosting")


@_schema("ranking").parametrize()
@bounded
def test_ranking_service(case, live):
    fuzz(case, live, "ranking")


@_schema("replication").parametrize()
@bounded
def test_replication_service(case, live):
    fuzz(case, live, "replication")

"""Schemathesis against each live service: every operation gets generated requests, valid and
invalid, and every answer must be a non-5xx with a declared status, content type and schema.

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
from shared.api import create_app
from tests.api.conftest import AUTH, SERVICES, TOKEN

# Per operation: enough for every mutation kind to come up, few enough for `make test` (set
# FUZZ_EXAMPLES higher for a longer hunt).
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))


def _schema(service: str):
    # The document of the service as it runs in `live` (api_token set), built without a server:
    # the parametrization happens at collection, before any fixture starts the services.
    app = create_app(config_module.parse({"connection": {"api_token": TOKEN}}), None, SERVICES[service])
    return schemathesis.openapi.from_dict(openapi.document(app, service, token_required=True))


def fuzz(case, live, service: str) -> None:
    live.fuzzed.count(f"{service} {case.operation.label}")
    case.call_and_validate(base_url=live.urls[service], headers=AUTH, excluded_checks=[positive_data_acceptance],
                           timeout=60)
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

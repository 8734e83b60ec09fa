"""Property-based tests of the REST API from its own OpenAPI document: no server errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from sippa.app.accounts import Accounts
from sippa.app.store import ConfigStore
from sippa.app.webserver import TrustAnchors
from sippa.interfaces.web import WebContext, create_app
from tests.web.conftest import ADMIN_PASSWORD, FakePhone

HEADERS: dict[str, str] = {}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.fixture(scope="module")
def web_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    store = ConfigStore(tmp / "sippa.db", lines=2)
    accounts = Accounts(store)
    accounts.set_password("admin", ADMIN_PASSWORD)
    HEADERS["Authorization"] = f"Bearer {accounts.create_token('admin', 'fuzz')}"
    ctx = WebContext(store, accounts, TrustAnchors(tmp / "ca", system=False), FakePhone())
    app = create_app(ctx)
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, headers=HEADERS)
    accounts.close()
    store.close()


def test_api_has_no_server_errors(web_schema: schemathesis.schemas.BaseSchema) -> None:
    """Each operation, bounded examples (schemathesis' pytest plugin predates pytest 9)."""
    operations = [
        result.ok() for result in web_schema.get_all_operations()
        if result.ok().path != "/api/v1/events"  # an endless stream
    ]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers=HEADERS)
            case.validate_response(response, checks=CHECKS)

        run()

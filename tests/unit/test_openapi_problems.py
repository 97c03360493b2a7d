"""The four OpenAPI documents list each operation's problems as the kit answers them: RFC 9457 problem details in
`application/problem+json`, with the one shared schema (the conformance suite checks the answers against them)."""

from __future__ import annotations

import pytest
from ezone_kit.openapi import PROBLEM_SCHEMA
from ezone_kit.problems import PROBLEM_MEDIA_TYPE
from ezone_kit.service import create_app

from ezone.services import SERVICES

PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}}
# The token endpoint answers its errors as OAuth 2 says (RFC 6749 §5.2), not as problem details.
OAUTH_ERRORS = {("/oauth/token", "post", "400"), ("/oauth/token", "post", "401")}


def operations(service: str):
    document = create_app(next(entry.definition for entry in SERVICES if entry.name == service)).openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield document, path, method, operation


@pytest.mark.parametrize("service", [entry.name for entry in SERVICES])
def test_every_error_an_operation_documents_is_problem_details(service):
    for document, path, method, operation in operations(service):
        for status, response in operation["responses"].items():
            if status >= "400" and (path, method, status) not in OAUTH_ERRORS:
                assert response["content"] == PROBLEM, (path, method, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize("service", [entry.name for entry in SERVICES])
def test_every_operation_documents_the_problems_the_kit_answers_for_it(service):
    for _, path, method, operation in operations(service):
        documented = set(operation["responses"])
        assert "500" in documented, (path, method)
        if "{" in path:
            assert "404" in documented, (path, method)
        if "requestBody" in operation:
            assert "422" in documented, (path, method)
        if path.startswith("/zones/"):  # every zone's resource needs a token, and reaches the database
            assert {"401", "403", "503"} <= documented, (path, method)

"""Every operation of the four services' OpenAPI documents, fuzzed by schemathesis against the running zone: no
server error, and every answer's status, content type and body as the document says.

The services run in this process on the real PostgreSQL and broker, on ports of their own (the alert stream needs a
real connection). Bounded and repeatable: a fixed seed, derandomized, a fixed number of examples per operation, valid
and invalid ones; nothing is stored between runs. Tokens reach every operation: each example goes with a token of one
of the roles the operation admits, of the fuzzed zone and acting for its school, and the path names that zone and
school, so that examples get past "not found" to what the operation does.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from ezone_kit.auth import ROLES
from ezone_kit.devkeys import mint_token
from ezone_results.edfi.resources import RESOURCES
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from ezone.services import SERVICES
from ezone.stack import EmbeddedBroker
from tests.helpers import register_school, register_zone, wait_for_count
from tests.stack import Stack, new_database, running_stack, served

# Examples are drawn in a worker thread while the services run on the event loop, whose broker clients use `random`:
# Hypothesis takes that for a strategy using it.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

SEED = 18
EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# An event stream never ends by itself: it is read this long (or up to its first event), then judged; its only input
# is a header, so a few examples do.
STREAM_READ_S = 1.0
STREAM_EXAMPLES = 5
PARTNER_ID = str(uuid.UUID(int=SEED))
SCHOOL_YEARS = ["2061-62", "2062-63"]  # far ahead, as the review tests' years


@dataclass
class FuzzedZone:
    stack: Stack
    zone_id: str
    school_id: str
    base_urls: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, role: str) -> str:
        if role not in self.tokens:
            self.tokens[role] = mint_token(self.stack.key_dir, role=role, zone=self.zone_id, schools=[self.school_id],
                                           partner_id=PARTNER_ID if role == "partner" else None)
        return self.tokens[role]


@pytest.fixture(scope="module")
async def fuzzed_zone(postgres, key_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FuzzedZone]:
    """A zone of its own, on a database and a broker of its own: fuzzed writes land neither in the shared zone nor
    in its consumer groups."""
    broker = EmbeddedBroker(log_path=tmp_path_factory.mktemp("tansu-fuzz") / "tansu.log")
    broker.start()
    try:
        async with running_stack(await new_database(postgres), broker.bootstrap_servers, key_dir) as stack, \
                contextlib.AsyncExitStack() as servers:
            zone_id = "fuzzed"
            await register_zone(stack, zone_id)
            school_id = (await register_school(stack, zone_id))["id"]
            for schema in ("results", "catalog", "notifications"):
                await wait_for_count(stack, f"SELECT count(*) FROM {schema}.schools WHERE zone_id = :z", 1, z=zone_id)
            base_urls = {entry.name: await servers.enter_async_context(served(stack, entry.name)) for entry in SERVICES}
            yield FuzzedZone(stack, zone_id, school_id, base_urls)
    finally:
        broker.stop()


def _roles_by_operation(service: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """The roles each operation admits, read from its `require_roles` dependency."""
    definition = next(entry.definition for entry in SERVICES if entry.name == service)
    admitted: dict[tuple[str, str], tuple[str, ...]] = {}
    for router in definition.routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and (roles := _required_roles(route.dependant)) is not None:
                admitted.update({(method, route.path_format): roles for method in route.methods})
    return admitted


def _required_roles(dependant: Dependant) -> tuple[str, ...] | None:
    for dependency in dependant.dependencies:
        if dependency.call is not None and dependency.call.__qualname__.startswith("require_roles."):
            return tuple(inspect.getclosurevars(dependency.call).nonlocals["roles"])
        if (found := _required_roles(dependency)) is not None:
            return found
    return None


def _known_path_values(operation: schemathesis.APIOperation, zone: FuzzedZone) -> dict[str, st.SearchStrategy]:
    """Path parameters that name what exists; the others (ids of plans, orders, alerts...) are generated."""
    known = {"zone_id": st.just(zone.zone_id), "school_id": st.just(zone.school_id),
             "school_year": st.sampled_from(SCHOOL_YEARS)}
    if operation.path.startswith("/ed-fi/"):
        known |= {"name": st.sampled_from(sorted(RESOURCES)), "kind": st.sampled_from(["resources", "descriptors"])}
    names = {parameter.name for parameter in operation.path_parameters}
    return {name: values for name, values in known.items() if name in names}


def _fuzz(operation: schemathesis.APIOperation, zone: FuzzedZone, base_url: str, roles: tuple[str, ...]) -> str | None:
    """Why the operation fails, or None."""
    cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode))
    streams = any("text/event-stream" in response.get("content", {})
                  for response in operation.definition.raw.get("responses", {}).values())
    transport = {"timeout": STREAM_READ_S} if streams else {}

    @hypothesis.seed(SEED)
    @hypothesis.settings(max_examples=STREAM_EXAMPLES if streams else EXAMPLES_PER_OPERATION, derandomize=True,
                         database=None, deadline=None, suppress_health_check=list(hypothesis.HealthCheck),
                         phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink])
    @hypothesis.given(case=cases, role=st.sampled_from(roles),
                      known=st.fixed_dictionaries(_known_path_values(operation, zone)))
    def conforms(case: schemathesis.Case, role: str, known: dict[str, str]) -> None:
        case.path_parameters = {**(case.path_parameters or {}), **known}
        case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {zone.token(role)}"},
                               checks=CHECKS, **transport)

    try:
        conforms()
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every failure is reported, with its example
        return f"{operation.label}: {_described(exc)}"
    return None


def _described(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, schemathesis.errors.FailureGroup):
        return "\n".join(_described(inner) for inner in exc.exceptions)
    return str(exc)


def _fuzz_every_operation(document: dict, zone: FuzzedZone, service: str) -> list[str]:
    roles = _roles_by_operation(service)
    failures = []
    for result in schemathesis.openapi.from_dict(document).get_all_operations():
        operation = result.ok()
        # An operation without a role check takes every role's token (some answer 403 from their own rules).
        admitted = roles.get((operation.method.upper(), operation.path), ROLES)
        if (failure := _fuzz(operation, zone, zone.base_urls[service], admitted)) is not None:
            failures.append(failure)
    return failures


@pytest.mark.parametrize("service", [entry.name for entry in SERVICES])
async def test_every_operation_answers_as_its_openapi_document_says(fuzzed_zone: FuzzedZone, service: str) -> None:
    document = (await fuzzed_zone.stack.clients[service].get("/openapi.json")).json()

    failures = await asyncio.to_thread(_fuzz_every_operation, document, fuzzed_zone, service)

    assert not failures, f"{len(failures)} operation(s) of {service} fail:\n\n" + "\n\n".join(failures)

"""The event contracts: committed JSON Schema / AsyncAPI files match the pydantic models, and are valid."""

from __future__ import annotations

import json
import re
import types
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import yaml
from ezone_schemas import EVENT_TYPES, Event, ResultsPosted, ResultsPostedV2, generate, topics
from jsonschema import Draft7Validator, Draft202012Validator
from pydantic import BaseModel, Field

ASYNCAPI_SCHEMA = Path(__file__).with_name("asyncapi-3.0.0.schema.json")
CE_TYPE_PATTERN = re.compile(r"^org\.ezone\.[a-z_]+(\.[a-z_]+)+\.v[0-9]+$")

ALL_EVENTS = sorted(EVENT_TYPES.values(), key=lambda event: event.ce_type)
each_event = pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda event: event.ce_type)

# Field values the generic sample builder cannot guess (a pattern, a cross-field rule), by ce_type.
SAMPLE_OVERRIDES: dict[str, dict[str, Any]] = {}

SCALAR_SAMPLES: dict[type, Any] = {
    dict: {"participation_minimum": 95.0},
    str: "sample",
    int: 1,
    float: 1.5,
    bool: True,
    Decimal: Decimal("1.5"),
    UUID: UUID("00000000-0000-4000-8000-000000000001"),
    datetime: datetime(2025, 9, 2, 8, 30, tzinfo=UTC),
    date: date(2025, 9, 2),
}


def sample_value(annotation: Any) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return sample_value(args[0])
    if origin in (typing.Union, types.UnionType):
        return sample_value(next(arg for arg in args if arg is not type(None)))
    if origin is typing.Literal:
        return args[0]
    if origin is tuple:
        return tuple(sample_value(arg) for arg in args if arg is not Ellipsis)
    if origin in (list, set, frozenset):
        return [sample_value(args[0])]
    if origin is dict:
        return {sample_value(args[0]): sample_value(args[1])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return next(iter(annotation))
    if annotation in SCALAR_SAMPLES:
        return SCALAR_SAMPLES[annotation]
    raise TypeError(f"no sample for {annotation!r}: add the field to SAMPLE_OVERRIDES in {__name__}")


def sample(model: type[BaseModel], *, required_only: bool = False) -> BaseModel:
    """An instance with every field set (or only the required ones), for schema round-trips."""
    overrides = SAMPLE_OVERRIDES.get(getattr(model, "ce_type", ""), {})
    values = {
        name: overrides[name] if name in overrides else sample_value(field.annotation)
        for name, field in model.model_fields.items()
        if field.is_required() or not required_only
    }
    return model(**values)


@pytest.fixture
def restore_event_types():
    """Lets a test register throwaway events without leaking them into other tests."""
    saved = dict(EVENT_TYPES)
    yield
    EVENT_TYPES.clear()
    EVENT_TYPES.update(saved)


def load_asyncapi() -> dict[str, Any]:
    return yaml.safe_load((generate.SCHEMAS_DIR / generate.ASYNCAPI_FILE).read_text(encoding="utf-8"))


def resolve_pointer(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and token in node, f"{ref} does not resolve"
        node = node[token]
    return node


def all_refs(node: Any) -> typing.Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from all_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_refs(item)


def test_committed_json_schemas_and_asyncapi_match_the_models():
    problems = generate.check()
    assert not problems, "Event contract files do not match the models:\n" + "\n".join(problems) + (
        f"\nTo fix: {generate.REGENERATE_HINT}."
    )


@each_event
def test_every_event_type_is_versioned_and_on_a_known_topic(event: type[Event]):
    assert CE_TYPE_PATTERN.match(event.ce_type), f"{event.ce_type} must look like org.ezone.<service>.<what>.v<N>"
    assert event.topic in topics.ALL
    topic_service = event.topic.split(".")[1]
    ce_type_service = event.ce_type.split(".")[2]
    assert ce_type_service == topic_service, f"{event.ce_type} is published on {event.topic}"
    assert event.summary, f"{event.__name__} needs a summary: it documents the event"


def test_every_topic_has_a_producing_service():
    assert set(generate.PRODUCERS) == set(topics.ALL)


def test_asyncapi_document_is_valid_asyncapi_3():
    document = load_asyncapi()
    assert document["asyncapi"] == "3.0.0"
    official_schema = json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8"))
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}"
        for error in Draft7Validator(official_schema).iter_errors(document)
    ]
    assert not errors, "\n".join(errors)


def test_asyncapi_references_all_resolve_inside_the_document():
    document = load_asyncapi()
    for ref in all_refs(document):
        resolve_pointer(document, ref)
    for operation in document["operations"].values():
        channel_ref = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), "an operation sends only its channel's messages"


def test_asyncapi_lists_every_event_on_its_topic_channel():
    document = load_asyncapi()
    for event in ALL_EVENTS:
        message = resolve_pointer(document, document["channels"][event.topic]["messages"][event.ce_type]["$ref"])
        assert message["headers"]["allOf"][1]["properties"]["ce_type"]["const"] == event.ce_type
    assert document["channels"][generate.DEAD_LETTER_CHANNEL]["address"] == "{topic}.dlq.{group}"


def test_asyncapi_payloads_and_headers_are_valid_json_schemas():
    document = load_asyncapi()
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for message in document["components"]["messages"].values():
        Draft202012Validator.check_schema(message["payload"])
        Draft202012Validator.check_schema(message["headers"])


@each_event
@pytest.mark.parametrize("required_only", [False, True], ids=["all-fields", "required-fields"])
def test_events_round_trip_through_their_json_schema(event: type[Event], required_only: bool):
    path = generate.SCHEMAS_DIR / generate.json_schema_path(event.ce_type)
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    instance = sample(event, required_only=required_only)
    wire = instance.model_dump(mode="json")

    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(wire)]
    assert not errors, "\n".join(errors)
    assert event.model_validate(json.loads(json.dumps(wire))) == instance


def test_a_model_change_is_detected_as_drift(tmp_path: Path, restore_event_types):
    generate.write(tmp_path)
    assert generate.check(tmp_path) == []

    class ThrowawayHappened(Event):
        ce_type = "org.ezone.plans.throwaway.happened.v1"
        topic = topics.PLANS
        summary = "Exists only in this test."

        zone_id: str

    new_schema = generate.json_schema_path(ThrowawayHappened.ce_type)
    assert generate.check(tmp_path) == [f"missing: {new_schema}", f"stale: {generate.ASYNCAPI_FILE}"]

    generate.write(tmp_path)
    del EVENT_TYPES[ThrowawayHappened.ce_type]

    class ThrowawayHappenedWithAField(Event):
        ce_type = ThrowawayHappened.ce_type
        topic = topics.PLANS
        summary = ThrowawayHappened.summary

        zone_id: str
        note: str = Field("", description="A field added after the files were generated.")

    assert generate.check(tmp_path) == [f"stale: {new_schema}", f"stale: {generate.ASYNCAPI_FILE}"]

    del EVENT_TYPES[ThrowawayHappenedWithAField.ce_type]
    assert generate.check(tmp_path) == [f"stale: {generate.ASYNCAPI_FILE}", f"orphaned (no such event type): {new_schema}"]

    generate.write(tmp_path)
    assert not (tmp_path / new_schema).exists()
    assert generate.check(tmp_path) == []



def test_results_posted_v2_has_a_v1_copy_only_for_the_subjects_v1_names():
    posted = ResultsPostedV2(zone_id="z", school_id=uuid4(), school_year="2024-25", subject="MATH",
                             assessment_identifiers=["MCAS-G7-MATH"], batch_id=uuid4(), source="edfi",
                             rows_inserted=3, rows_updated=1, posted_at=datetime.now(UTC))
    v1 = posted.as_v1()
    assert isinstance(v1, ResultsPosted) and v1.model_dump(mode="json") == posted.model_dump(mode="json")
    assert posted.model_copy(update={"subject": "Social Studies"}).as_v1() is None

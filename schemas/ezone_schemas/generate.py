"""Generate the committed contract files from the event models, or check that they are current.

    python -m ezone_schemas.generate           # (re)write schemas/jsonschema/*.json and schemas/asyncapi.yaml
    python -m ezone_schemas.generate --check   # write nothing; exit 1 listing missing, stale or orphaned files

Every event registered in `EVENT_TYPES` is picked up: adding an event is adding its class
(and importing its module in `ezone_schemas/__init__.py`), then running `make contracts`.

Schemas are generated in pydantic's *serialization* mode: producers put
`event.model_dump(mode="json")` on the wire, so the contract describes that JSON, which is
what consumers in any language read, rather than the (more lenient) input pydantic accepts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from . import topics
from .base import EVENT_TYPES, Event

SCHEMAS_DIR = Path(__file__).resolve().parents[1]
PYPROJECT = SCHEMAS_DIR.parent / "pyproject.toml"
JSON_SCHEMA_SUBDIR = "jsonschema"
ASYNCAPI_FILE = "asyncapi.yaml"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE_HINT = "run `make contracts` (python -m ezone_schemas.generate) and commit the result"

# The one service that produces each topic (the design's "one topic per producing service").
PRODUCERS = {
    topics.PLANS: "plans",
    topics.RESULTS: "results",
    topics.CATALOG: "services-catalog",
    topics.NOTIFICATIONS: "notifications",
}

HEADERS_SCHEMA_NAME = "CloudEventsHeaders"
KAFKA_BINDING_NAME = "recordKey"
CORRELATION_ID_NAME = "ceId"
DEAD_LETTER_CHANNEL = "deadLetter"
DEAD_LETTER_MESSAGE = "deadLetter"

UUID_STRING = {"type": "string", "format": "uuid"}
DIGITS_STRING = {"type": "string", "pattern": "^[0-9]+$"}

CLOUDEVENTS_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": (
        "Kafka record headers: CloudEvents 1.0 in the Kafka protocol binding's binary content mode, "
        "plus W3C trace context. Header values are UTF-8 strings."
    ),
    "required": ["ce_id", "ce_type", "ce_source", "ce_time", "ce_specversion", "content-type"],
    "properties": {
        "ce_id": {**UUID_STRING, "description": "The event id (the producer's outbox row id); consumers deduplicate on it."},
        "ce_type": {"type": "string", "description": "The versioned event type, e.g. `org.ezone.plans.school.registered.v1`."},
        "ce_source": {"type": "string", "description": "The producing service.", "examples": ["/ezone/plans"]},
        "ce_time": {"type": "string", "format": "date-time", "description": "When the event happened (RFC 3339)."},
        "ce_specversion": {"type": "string", "const": "1.0"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {
            "type": "string",
            "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
            "description": "W3C trace context of the request that caused the event; absent when it was not traced.",
        },
        "tracestate": {"type": "string", "description": "W3C trace state, when the caller sent one."},
    },
}

DEAD_LETTER_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "Every header of the original record, unchanged, plus these.",
    "required": [
        "ezone_dlq_error",
        "ezone_dlq_attempts",
        "ezone_dlq_group",
        "ezone_dlq_original_topic",
        "ezone_dlq_original_partition",
        "ezone_dlq_original_offset",
    ],
    "properties": {
        "ezone_dlq_error": {"type": "string", "description": "The error text."},
        "ezone_dlq_attempts": {**DIGITS_STRING, "description": "How many times the consumer tried."},
        "ezone_dlq_group": {"type": "string", "description": "The consumer group that gave up."},
        "ezone_dlq_original_topic": {"type": "string"},
        "ezone_dlq_original_partition": DIGITS_STRING,
        "ezone_dlq_original_offset": DIGITS_STRING,
    },
}


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a shared Python object out in full each time instead of as a YAML anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def registered_events() -> list[type[Event]]:
    """Every registered event, in a stable order: by topic (as listed in `topics.ALL`), then type."""
    unknown = sorted(f"{cls.ce_type} (topic {cls.topic!r})" for cls in EVENT_TYPES.values() if cls.topic not in topics.ALL)
    if unknown:
        raise ValueError(f"events on a topic missing from ezone_schemas.topics.ALL: {', '.join(unknown)}")
    return sorted(EVENT_TYPES.values(), key=lambda cls: (topics.ALL.index(cls.topic), cls.ce_type))


def json_schema_path(ce_type: str) -> str:
    return f"{JSON_SCHEMA_SUBDIR}/{ce_type}.json"


def event_json_schema(event: type[Event]) -> dict[str, Any]:
    """A standalone schema: nested models stay in its own `$defs`."""
    schema = event.model_json_schema(mode="serialization")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:ezone:schema:{event.ce_type}",
        **schema,
        "title": event.__name__,
        "description": event.summary,
        "x-ezone-topic": event.topic,
        "x-ezone-ce-type": event.ce_type,
    }


def project_version() -> str:
    # Read from pyproject.toml rather than installed metadata, which goes stale until a reinstall.
    with PYPROJECT.open("rb") as file:
        return tomllib.load(file)["project"]["version"]


def _words(class_name: str) -> str:
    """`SchoolRegistered` -> `School registered`."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda match: " " + match.group(1).lower(), class_name)


def _message(event: type[Event], payload_ref: dict[str, str]) -> dict[str, Any]:
    return {
        "name": event.__name__,
        "title": _words(event.__name__),
        "summary": event.summary,
        "contentType": "application/json",
        "headers": {
            "allOf": [
                {"$ref": f"#/components/schemas/{HEADERS_SCHEMA_NAME}"},
                {"type": "object", "properties": {"ce_type": {"type": "string", "const": event.ce_type}}},
            ]
        },
        "payload": payload_ref,
        "correlationId": {"$ref": f"#/components/correlationIds/{CORRELATION_ID_NAME}"},
        "bindings": {"$ref": f"#/components/messageBindings/{KAFKA_BINDING_NAME}"},
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "DeadLetter",
        "title": "Dead-lettered record",
        "summary": "A record a consumer group gave up on after its retries; `ezone dlq` lists and replays these.",
        "headers": DEAD_LETTER_HEADERS,
        "payload": {
            "description": (
                "The original record's value, byte for byte. It may not be valid JSON or may not match its "
                "contract: that can be why it was dead-lettered."
            )
        },
        "bindings": {
            "kafka": {"key": {"type": "string", "description": "The original record's key."}, "bindingVersion": "0.5.0"}
        },
    }


def asyncapi_document(events: list[type[Event]]) -> dict[str, Any]:
    missing_producers = [topic for topic in topics.ALL if topic not in PRODUCERS]
    if missing_producers:
        raise ValueError(f"no producing service declared in PRODUCERS for: {', '.join(missing_producers)}")

    # AsyncAPI's default Schema Object is a draft-07 superset; pydantic's output for event models uses keywords
    # draft-07 and 2020-12 read alike, so the same schemas serve both. One pass over all events, so pydantic
    # names shared nested models once (under components) and disambiguates clashing names.
    refs, definitions = models_json_schema(
        [(event, "serialization") for event in events], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})
    if HEADERS_SCHEMA_NAME in schemas:
        raise ValueError(f"a model is named {HEADERS_SCHEMA_NAME}, which the headers schema uses")
    for event in events:
        name = refs[(event, "serialization")]["$ref"].rsplit("/", 1)[1]
        body = {key: value for key, value in schemas[name].items() if key not in ("title", "description")}
        schemas[name] = {"title": event.__name__, "description": event.summary, **body}  # say what it is first

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in topics.ALL:
        on_topic = [event for event in events if event.topic == topic]
        service = PRODUCERS[topic]
        channels[topic] = {
            "address": topic,
            "title": f"{service} events",
            "description": f"Every event the {service} service publishes.",
            "messages": {event.ce_type: {"$ref": f"#/components/messages/{event.ce_type}"} for event in on_topic},
        }
        operations[f"{service}.send"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic}"},
            "title": f"{service} publishes",
            "summary": f"The {service} service's outbox relay publishes the events its transactions recorded.",
            "messages": [{"$ref": f"#/channels/{topic}/messages/{event.ce_type}"} for event in on_topic],
        }
        for event in on_topic:
            messages[event.ce_type] = _message(event, refs[(event, "serialization")])

    channels[DEAD_LETTER_CHANNEL] = {
        "address": "{topic}.dlq.{group}",
        "title": "Dead letters",
        "description": (
            "One dead-letter topic per consumed topic and consumer group: a record that failed every attempt "
            "is copied here with the error, and the partition keeps moving."
        ),
        "parameters": {
            "topic": {"description": "The topic the record was consumed from.", "enum": list(topics.ALL)},
            "group": {"description": "The consumer group that gave up on it.", "examples": ["notifications"]},
        },
        "messages": {DEAD_LETTER_MESSAGE: {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}},
    }
    messages[DEAD_LETTER_MESSAGE] = _dead_letter_message()

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ezone events",
            "version": project_version(),
            "description": (
                "Every event ezone services publish on Kafka, generated from the pydantic models in "
                "`ezone_schemas`. Envelope: CloudEvents 1.0, Kafka binary content mode (the value is the event's "
                "JSON). Changes are additive within a version."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {HEADERS_SCHEMA_NAME: CLOUDEVENTS_HEADERS, **schemas},
            "messages": messages,
            "correlationIds": {
                CORRELATION_ID_NAME: {
                    "description": "The CloudEvents id: unique per event; consumers deduplicate on it.",
                    "location": "$message.header#/ce_id",
                }
            },
            "messageBindings": {
                KAFKA_BINDING_NAME: {
                    "kafka": {
                        "key": {
                            "type": "string",
                            "description": (
                                "school id or zone id: the event's `school_id`, or the zone id for zone-wide "
                                "events, so each school's events stay in order."
                            ),
                        },
                        "bindingVersion": "0.5.0",
                    }
                }
            },
        },
    }


def render() -> dict[str, bytes]:
    """The content of every generated file, by path relative to the schemas directory."""
    events = registered_events()
    files = {
        json_schema_path(event.ce_type): json.dumps(event_json_schema(event), indent=2, sort_keys=True, ensure_ascii=False)
        + "\n"
        for event in events
    }
    files[ASYNCAPI_FILE] = yaml.dump(
        asyncapi_document(events), Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=120
    )
    return {relative: content.encode("utf-8") for relative, content in files.items()}


def write(out_dir: Path = SCHEMAS_DIR) -> list[str]:
    """Write every generated file under `out_dir` and delete orphaned JSON schemas; returns what it did."""
    expected = render()
    actions = []
    (out_dir / JSON_SCHEMA_SUBDIR).mkdir(parents=True, exist_ok=True)
    for relative, content in expected.items():
        path = out_dir / relative
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)
            actions.append(f"wrote {relative}")
    for orphan in _orphans(out_dir, expected):
        (out_dir / orphan).unlink()
        actions.append(f"deleted {orphan}")
    return actions


def check(out_dir: Path = SCHEMAS_DIR) -> list[str]:
    """Every way the files under `out_dir` differ from what the models generate; empty when current."""
    expected = render()
    problems = []
    for relative, content in expected.items():
        path = out_dir / relative
        if not path.is_file():
            problems.append(f"missing: {relative}")
        elif path.read_bytes() != content:
            problems.append(f"stale: {relative}")
    problems += [f"orphaned (no such event type): {orphan}" for orphan in _orphans(out_dir, expected)]
    return problems


def _orphans(out_dir: Path, expected: dict[str, bytes]) -> list[str]:
    existing = (out_dir / JSON_SCHEMA_SUBDIR).glob("*.json")
    return sorted(relative for path in existing if (relative := f"{JSON_SCHEMA_SUBDIR}/{path.name}") not in expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ezone_schemas.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail if any generated file is not current")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        if problems:
            print(f"Event contract files under {SCHEMAS_DIR} do not match the models:", file=sys.stderr)
            print(*(f"  {problem}" for problem in problems), sep="\n", file=sys.stderr)
            print(f"To fix: {REGENERATE_HINT}.", file=sys.stderr)
            return 1
        print("Event contract files are current.")
        return 0
    print("\n".join(write()) or "Event contract files were already current.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

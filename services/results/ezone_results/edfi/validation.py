"""What Ed-Fi itself refuses in a document: anything its resource's published schema refuses, and descriptor
values the zone does not have.

Documents are checked against the very schemas `{base}/metadata/` publishes (openapi_schemas.py): a compiled
validator first (fastjsonschema: cheap, stops at the first error), and only for a document it refuses, a full
pass (jsonschema) so that the client hears every error at once, keyed by JSON path as Ed-Fi does."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from functools import cache
from typing import Any

import fastjsonschema
from jsonschema import Draft7Validator, FormatChecker
from sqlalchemy import text

from .reads import Reader
from .openapi_schemas import DESCRIPTOR_COMPONENTS, DESCRIPTOR_RESOURCES, RESOURCE_COMPONENTS
from .resources import Resource

# Ed-Fi's dates and times: a date, or a date and time with or without its offset (`2021-12-01T16:00:00`), each a
# real day and time (not `2021-13-01`, `2022-02-30`). Both validators check them the same way.
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type check's business
    try:
        return bool(_DATE.match(value)) and bool(date.fromisoformat(value))
    except ValueError:
        return False


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return bool(_DATE_TIME.match(value)) and bool(datetime.fromisoformat(value))
    except ValueError:
        return False


_FORMATS: dict[str, Callable[[object], bool]] = {"date": _is_date, "date-time": _is_date_time}
_FORMAT_CHECKER = FormatChecker(formats=())
_FORMAT_CHECKER.checks("date")(_is_date)
_FORMAT_CHECKER.checks("date-time")(_is_date_time)
_COMPONENTS = {**RESOURCE_COMPONENTS, **DESCRIPTOR_COMPONENTS}


def _root(resource: Resource) -> dict[str, Any]:
    return {**_COMPONENTS[resource.component], "components": {"schemas": _COMPONENTS}}


@cache
def _fast(resource: Resource) -> Callable[[Any], Any]:
    return fastjsonschema.compile(_root(resource), formats=_FORMATS)


@cache
def _full(resource: Resource) -> Draft7Validator:
    return Draft7Validator(_root(resource), format_checker=_FORMAT_CHECKER)


_JSON_PATH_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _json_path(parts: Iterator[Any]) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if _JSON_PATH_PART.match(part) else f"['{part}']"
    return path


def schema_errors(resource: Resource, document: Any) -> dict[str, list[str]]:
    """Every way the document breaks its resource's schema, by JSON path; empty when it is valid."""
    try:
        _fast(resource)(document)
        return {}
    except fastjsonschema.JsonSchemaValueException:
        pass
    errors: dict[str, list[str]] = {}
    for error in _full(resource).iter_errors(document):
        path = _json_path(iter(error.absolute_path))
        if error.validator == "required":
            missing = error.message.split("'")[1]
            errors.setdefault(f"{path}.{missing}", []).append(f"{missing} is required.")
        elif error.validator == "format":
            errors.setdefault(path, []).append(f"{error.instance!r} is not a valid {error.validator_value}.")
        else:
            errors.setdefault(path, []).append(error.message)
    # The fast validator refused what the full pass accepts only for a format the two read differently.
    return errors or {"$": ["The document does not match its schema."]}


def _descriptor_resource_by_suffix() -> list[tuple[str, str]]:
    # `whenAssessedGradeLevelDescriptor` is a gradeLevelDescriptor: the longest descriptor name the property ends with.
    pairs = [(name[0].upper() + name[1:-1], name) for name in DESCRIPTOR_RESOURCES]  # GradeLevelDescriptor
    return sorted(pairs, key=lambda pair: -len(pair[0]))


_SUFFIXES = _descriptor_resource_by_suffix()


@cache  # a resource's property names are few; this runs for each property of each record
def descriptor_resource_of(property_name: str) -> str | None:
    capitalised = property_name[0].upper() + property_name[1:]
    return next((name for suffix, name in _SUFFIXES if capitalised.endswith(suffix)), None)


def descriptor_values(document: Any, path: str = "$") -> Iterator[tuple[str, str, str]]:
    """(JSON path, descriptor resource, value) of every descriptor value in the document."""
    if isinstance(document, dict):
        for name, value in document.items():
            if isinstance(value, str) and name.endswith("Descriptor"):
                if (kind := descriptor_resource_of(name)) is not None:
                    yield f"{path}.{name}", kind, value
            elif isinstance(value, dict | list):
                yield from descriptor_values(value, f"{path}.{name}")
    elif isinstance(document, list):
        for i, item in enumerate(document):
            yield from descriptor_values(item, f"{path}[{i}]")


class Descriptors:
    """Each zone's descriptor values, read from its descriptor documents: a value not found reloads the zone once
    (it may have just been added, by this process or another), and a zone read more than a minute ago is read again
    (so a value deleted elsewhere stops being accepted within a minute)."""

    MAX_AGE_S = 60.0

    def __init__(self) -> None:
        self._zones: dict[str, tuple[float, frozenset[tuple[str, str]]]] = {}

    def forget(self, zone_id: str) -> None:
        self._zones.pop(zone_id, None)

    async def _load(self, conn: Reader, zone_id: str) -> frozenset[tuple[str, str]]:
        rows = await conn.execute(text(
            "SELECT resource, concat(identity->>'namespace', '#', identity->>'codeValue') FROM results.edfi_documents"
            " WHERE zone_id = :zone_id AND resource = ANY(:resources)"),
            {"zone_id": zone_id, "resources": DESCRIPTOR_RESOURCES})
        values = frozenset((resource, value) for resource, value in rows)
        self._zones[zone_id] = (time.monotonic(), values)
        return values

    async def unknown(self, conn: Reader, zone_id: str, document: Any) -> dict[str, list[str]]:
        """The document's descriptor values the zone does not have, by JSON path."""
        used = list(descriptor_values(document))
        if not used:
            return {}
        loaded_at, known = self._zones.get(zone_id, (0.0, frozenset()))
        fresh = time.monotonic() - loaded_at > self.MAX_AGE_S
        if fresh:
            known = await self._load(conn, zone_id)
        missing = [(path, kind, value) for path, kind, value in used if (kind, value) not in known]
        if missing and not fresh:
            known = await self._load(conn, zone_id)
            missing = [(path, kind, value) for path, kind, value in missing if (kind, value) not in known]
        return {path: [f"{value!r} is not one of the zone's {kind}: send it there first (namespace#codeValue)."]
                for path, kind, value in missing}

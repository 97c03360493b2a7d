"""JSON bodies read by the endpoint, so that one 422 lists every error of a request.

A body FastAPI validates is refused on its shape before the endpoint runs: the service's own rules (sums, the
zone's policy, ids) are then reported only once the shape is fixed, a second round for the client. An endpoint
that takes `Received[Model]` (with `lenient_body(Model)`) gets the body whatever its shape: the whole model when
it is valid, else the shape errors and the raw JSON, from which `field`, `part` and `items` validate the pieces the
rules need on their own. The service runs its rules on what it could read and answers once with everything.
"""

from __future__ import annotations

import dataclasses
import email.message
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel, TypeAdapter, ValidationError

from .problems import unreadable_body_error, validation_problem

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P", bound=BaseModel)


@dataclasses.dataclass
class Received(Generic[M]):
    """A request body: `value` when it is valid, else None and its shape errors (pydantic-style, under `body`)."""

    model: type[M]
    raw: Any
    value: M | None
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def field(self, name: str) -> Any:
        """A top-level field of the body when it is valid on its own (the model's field validators aside), else None;
        None too for a field the shape checks refused (its error is listed already)."""
        if self.value is not None:
            return getattr(self.value, name)
        if not isinstance(self.raw, dict) or name not in self.raw:
            return None
        if any(tuple(error["loc"][:2]) == ("body", name) for error in self.errors):
            return None
        info = self.model.model_fields[name]
        kind = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        try:
            return TypeAdapter(kind).validate_python(self.raw[name])
        except ValidationError:
            return None

    def _at(self, path: tuple[str | int, ...]) -> Any:
        node = self.raw
        for step in path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def part(self, model: type[P], *path: str | int) -> P | None:
        """The piece of the body at `path` when it is a valid `model` on its own (its errors, if any, are
        already among the body's), else None."""
        try:
            return model.model_validate(self._at(path))
        except ValidationError:
            return None

    def items(self, model: type[P], *path: str | int) -> list[P | None]:
        """Each element of the list at `path` as a valid `model`, None where one is not ([] when there is no list)."""
        found = self._at(path)
        return [self.part(model, *path, n) for n in range(len(found))] if isinstance(found, list) else []

    def refuse(self, rule_errors: list[dict[str, Any]]) -> None:
        """422 with the shape errors and `rule_errors` together, when there is any."""
        if self.errors or rule_errors:
            raise validation_problem([*self.errors, *rule_errors])


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def lenient_body(model: type[M]) -> Callable[[Request], Awaitable[Received[M]]]:
    """A dependency reading the request's JSON body as `model` without refusing it; declare the body in the
    route's OpenAPI with `openapi_extra=json_body(model)`."""

    async def read(request: Request) -> Received[M]:
        body = await request.body()
        if not body:
            return Received(model, None, None, [{"type": "missing", "loc": ("body",), "msg": "Field required"}])
        if not _is_json(request.headers.get("content-type")):
            reason = "the body must be JSON, sent as Content-Type: application/json"
            return Received(model, None, None, [{"type": "not_json", "loc": ("body",), "msg": reason}])
        # Never raised here: the route's other dependencies (who calls, first) still answer before any 422.
        try:
            raw = json.loads(body)
        except json.JSONDecodeError as exc:
            return Received(model, None, None, [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": exc.msg}])
        except (UnicodeDecodeError, RecursionError) as exc:
            return Received(model, None, None, [unreadable_body_error(exc)])
        try:
            return Received(model, raw, model.model_validate(raw))
        except ValidationError as exc:
            return Received(model, raw, None, [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()])

    return read


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI description of a JSON body the endpoint reads itself, its schema's definitions written in place."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: inline(value) for key, value in node.items()}
        return [inline(item) for item in node] if isinstance(node, list) else node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}

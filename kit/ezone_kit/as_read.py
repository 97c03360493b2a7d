"""Request bodies that take a resource back as a GET returned it.

A client that reads a resource, changes a field and writes it back should not have to strip what it cannot
change. A body model derived from `AsRead` accepts the fields of its `read_as` view that it does not declare
itself: they are set aside before validation (so unknown fields are still refused), identifying ones are
compared with the resource by `check_as_read` (equal is fine, different is a 422 saying what it is), and the
rest (timestamps, statuses, derived figures) are ignored.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator

from .problems import validation_problem


class AsRead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    read_as: ClassVar[type[BaseModel] | None] = None
    _as_read: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def read_only_fields(cls) -> frozenset[str]:
        """The view's fields this body does not write."""
        return frozenset(cls.read_as.model_fields) - frozenset(cls.model_fields) if cls.read_as else frozenset()

    @model_validator(mode="wrap")
    @classmethod
    def _set_aside_read_only(cls, data: Any, handler: Any) -> Any:
        read_only = cls.read_only_fields()
        if not isinstance(data, dict) or not read_only.intersection(data):
            return handler(data)
        sent = {key: value for key, value in data.items() if key in read_only}
        body = handler({key: value for key, value in data.items() if key not in read_only})
        body._as_read = sent
        return body

    def __eq__(self, other: object) -> bool:
        # What was set aside does not make two bodies different requests.
        if not isinstance(other, BaseModel):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def sent_as_read(self) -> dict[str, Any]:
        """The read-only fields the request carried, as sent."""
        return dict(self._as_read)

    @classmethod
    def read_only_in(cls, raw: Any) -> dict[str, Any]:
        """The read-only fields a body carries, from its JSON as sent (for a body whose shape is not valid)."""
        if not isinstance(raw, dict):
            return {}
        return {key: value for key, value in raw.items() if key in cls.read_only_fields()}


def _same(sent: Any, actual: Any) -> bool:
    """Identifying fields are ids, codes and names: equal as UUIDs (whatever the case), else as text."""
    if actual is None or sent is None:
        return sent is actual
    try:
        return uuid.UUID(str(sent)) == uuid.UUID(str(actual))
    except ValueError:
        return str(sent) == str(actual)


def as_read_errors(body: AsRead | dict[str, Any], actual: dict[str, Any], root: tuple[str | int, ...] = ("body",),
                   ) -> list[dict[str, Any]]:
    """Pydantic-style errors for the identifying fields `body` carried (a body, or its read-only fields as sent) that
    differ from the resource's."""
    sent = body.sent_as_read() if isinstance(body, AsRead) else body
    return [
        {"loc": (*root, name), "type": "read_only",
         "msg": f"is read-only and this resource's is {actual[name]!s}; send it as read or leave it out"}
        for name, value in sent.items()
        if name in actual and not _same(value, actual[name])
    ]


def check_as_read(body: AsRead, **actual: Any) -> None:
    """422 when `body` carries an identifying field (`actual` names them with the resource's values) that differs."""
    if errors := as_read_errors(body, actual):
        raise validation_problem(errors)

"""A JSON batch's rows checked column by column: each field's distinct values once, each rule between fields once
per distinct combination of what it reads.

A batch of 5,000 results holds a few hundred distinct values besides its student ids (a handful of schools,
assessments, grades and dates, the scores of one scale), so checking it costs little more than reading its values,
where the row model costs ~25 µs a row. The checks are the model's own: each field's type with its constraints and
normalisation (a TypeAdapter of the model's field, with the model's configuration), the model's `RULES`, the zone's
schools. A row these do not accept as it is — not an object of known fields, a value a check refuses, a required
field missing — goes through `parse_row`, which lists its errors as for a single row (or accepts it: a valid row may
be left to it). So a row is stored only if the model accepts it, and its errors read the same either way.
"""

from __future__ import annotations

import operator
import re
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from itertools import repeat
from typing import Annotated, Any

import orjson
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from .schemas import STUDENT_ID_PATTERN, IngestRow, Rule, RowError, ZoneSchools, parse_row

_MISSING = object()  # a field the row leaves out
_REFUSED = object()  # a value a check refused: its rows go through parse_row
_SET = object()  # what a rule that asks only whether a field is set sees of a set one
_UNHASHABLE = object()  # the key of a value that cannot be one (a list in a list, an object): refused
_NUMBERS = {int, float, bool}  # 1 == 1.0 == True: as keys of one dict they need their type
_CONVERTED = {uuid.UUID, Decimal, list}  # the types `sql_value` writes otherwise
_STUDENT_ID = re.compile(STUDENT_ID_PATTERN)


@dataclass(frozen=True)
class CheckedRows:
    numbers: list[int]  # the valid rows' indexes in the request, ascending
    # The valid rows as a JSON array of arrays: their fields in the model's order, as `sql_value` writes them.
    # Encoded here so that no object per row outlives the check (fewer for the garbage collector to walk).
    document: bytes
    sample: bytes  # the first, middle and last of them, the same way
    groups: dict[tuple[Any, ...], int]  # how many of them have each combination of `group_by` values, as written
    errors: list[RowError]  # every error of the other rows, in row order


def check_rows(model: type[IngestRow], raw_rows: Sequence[Any], zone_schools: ZoneSchools, *,
               group_by: Sequence[str] = ()) -> CheckedRows:
    """Every row checked (indexes from 0) as `parse_row` checks it, and a natural key seen in an earlier row refused:
    two values for one result in one request is a bug at the sender, and storing either would hide it. The valid
    rows are counted by the values of the `group_by` fields."""
    fields = _fields(model)
    if set(map(type, raw_rows)) == {dict} and set().union(*raw_rows) <= fields.known:
        candidates, rows = range(len(raw_rows)), raw_rows
    else:
        candidates = [index for index, raw in enumerate(raw_rows) if type(raw) is dict and raw.keys() <= fields.known]
        rows = [raw_rows[index] for index in candidates]
    inputs = {name: list(map(dict.get, rows, repeat(name), repeat(_MISSING))) for name in fields.names}
    columns = {name: _student_ids(values) if name == "student_id" else _Column.of(values, fields.checks[name])
               for name, values in inputs.items()}
    # A school of the zone's, as parse_row asks after the model.
    columns["school_id"].values = [school if school in zone_schools else _REFUSED for school in columns["school_id"].values]
    for name in fields.names:
        if name in model.RULES:
            columns[name] = _apply_rule(name, model.RULES[name], columns)

    refused = set().union(*(column.refused_positions() for column in columns.values()))
    refused |= _grades_not_taught(columns["school_id"], columns["grade"], zone_schools)
    accepted = [position for position in range(len(rows)) if position not in refused]
    numbers = [candidates[position] for position in accepted]
    values = _rows([columns[name].sql_per_row() for name in fields.names], accepted)

    errors: list[RowError] = []
    others = sorted(set(range(len(raw_rows))).difference(numbers)) if len(numbers) < len(raw_rows) else []
    for index in others:
        row, row_errors = parse_row(model, raw_rows[index], index, zone_schools)
        if row is None:
            errors.extend(row_errors)
        else:  # valid as the model reads it, in a form the checks above leave to it
            numbers.append(index)
            values.append(tuple(sql_value(getattr(row, name)) for name in fields.names))
    if len(numbers) > len(accepted):  # rows accepted by parse_row go back to their place
        numbers, values = (list(part) for part in zip(*sorted(zip(numbers, values), key=operator.itemgetter(0))))
    # Keys and groups of the values as written: hashing them is cheap (strings, dates), hashing a UUID is not.
    keys = list(map(operator.itemgetter(*map(fields.names.index, model.NATURAL_KEY)), values))
    if len(set(keys)) < len(keys):
        numbers, values = _first_of_each_key(numbers, keys, values, errors)
    errors.sort(key=lambda error: error["row"])
    sample = [values[position] for position in sorted({0, len(values) // 2, len(values) - 1}) if values]
    groups = Counter(map(operator.itemgetter(*map(fields.names.index, group_by)), values)) if group_by else {}
    return CheckedRows(numbers, orjson.dumps(values), orjson.dumps(sample), dict(groups), errors)


def sql_value(value: Any) -> Any:
    """A field's value as JSON that PostgreSQL casts to its column: a UUID or Decimal as a string, subgroups as an
    array literal (their names need no quoting); dates, enums and the rest as orjson writes them."""
    if type(value) is uuid.UUID or type(value) is Decimal:
        return str(value)
    if type(value) is list:
        return "{" + ",".join(value) + "}"
    return value


class _Column:
    """One field's values in dictionary encoding: each row's code indexes the field's distinct values."""

    def __init__(self, codes: Sequence[int], values: list[Any]) -> None:
        self.codes = codes
        self.values = values  # the model's value for each distinct input, or _REFUSED

    @classmethod
    def of(cls, inputs: list[Any], check: Callable[[Any], Any]) -> _Column:
        """The inputs encoded, and `check` applied once to each distinct one."""
        codes, distinct = _encode(inputs)
        return cls(codes, [_REFUSED if value is _UNHASHABLE else check(value) for value in distinct])

    def per_row(self) -> list[Any]:
        return list(map(self.values.__getitem__, self.codes))

    def sql_per_row(self) -> list[Any]:
        """Each row's value as `sql_value` writes it."""
        if _CONVERTED.isdisjoint(map(type, self.values)):
            return self.per_row()
        return list(map(list(map(sql_value, self.values)).__getitem__, self.codes))

    def refused_positions(self) -> set[int]:
        refused = {code for code, value in enumerate(self.values) if value is _REFUSED}
        return {position for position, code in enumerate(self.codes) if code in refused} if refused else set()


def _encode(inputs: list[Any]) -> tuple[list[int], list[Any]]:
    """Each input's index among the distinct inputs, and one input for each."""
    try:
        distinct = dict.fromkeys(inputs)
    except TypeError:  # lists, by their items (or an object)
        if set(map(type, inputs)) == {list}:
            return _encode_by(list(map(tuple, inputs)), inputs)
        return _encode_by([tuple(value) if type(value) is list else value for value in inputs], inputs)
    if not _NUMBERS.isdisjoint(map(type, distinct)) and len(_NUMBERS.intersection(map(type, inputs))) > 1:
        return _encode_by(list(zip(map(type, inputs), inputs)), inputs)
    code = {value: index for index, value in enumerate(distinct)}
    return list(map(code.__getitem__, inputs)), list(distinct)


def _encode_by(keys: list[Any], inputs: list[Any]) -> tuple[list[int], list[Any]]:
    try:
        distinct = dict(zip(keys, inputs))
    except TypeError:  # a list in a list, an object
        keys = [key if _hashable(key) else _UNHASHABLE for key in keys]
        distinct = {key: _UNHASHABLE if key is _UNHASHABLE else value for key, value in zip(keys, inputs)}
    code = {key: index for index, key in enumerate(distinct)}
    return list(map(code.__getitem__, keys)), list(distinct.values())


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def _apply_rule(name: str, rule: Rule, columns: dict[str, _Column]) -> _Column:
    """A rule of the model on every row, applied once per distinct combination of the field's value and what the
    rule reads of the others; the field's values are what it answers."""
    column = columns[name]
    read = [columns[other] for other in rule.reads]
    presence = [_presence(columns[other]) for other in rule.reads_presence]
    codes, combinations = _encode(list(zip(column.codes, *(other.codes for other in read), *presence)))

    def apply(combination: tuple[Any, ...]) -> Any:
        value = column.values[combination[0]]
        others = [other.values[code] for other, code in zip(read, combination[1:])]
        presences = combination[1 + len(read):]
        if value is _REFUSED or _REFUSED in others or _REFUSED in presences:
            return _REFUSED
        data = dict(zip(rule.reads, others)) | dict(zip(rule.reads_presence, presences))
        try:
            return rule.check(name, value, data)
        except PydanticCustomError:
            return _REFUSED

    return _Column(codes, list(map(apply, combinations)))


def _grades_not_taught(schools: _Column, grades: _Column, zone_schools: ZoneSchools) -> set[int]:
    """Rows whose school does not teach their grade (asked once per distinct school and grade); parse_row says why."""
    pairs = list(zip(schools.codes, grades.codes))
    wrong = set()
    for school_code, grade_code in set(pairs):
        school, grade = schools.values[school_code], grades.values[grade_code]
        if school is not _REFUSED and grade is not _REFUSED and grade not in zone_schools[school].grades:
            wrong.add((school_code, grade_code))
    return {position for position, pair in enumerate(pairs) if pair in wrong} if wrong else set()


def _presence(column: _Column) -> list[Any]:
    """Per row: None, _SET, or _REFUSED — what a rule asking whether the field is set needs to know."""
    presence = [value if value is None or value is _REFUSED else _SET for value in column.values]
    return list(map(presence.__getitem__, column.codes))


def _rows(columns: list[list[Any]], positions: list[int]) -> list[tuple[Any, ...]]:
    rows = list(zip(*columns))
    return rows if len(positions) == len(rows) else [rows[position] for position in positions]


def _first_of_each_key(numbers: list[int], keys: list[tuple[Any, ...]], values: list[tuple[Any, ...]],
                       errors: list[RowError]) -> tuple[list[int], list[tuple[Any, ...]]]:
    first_seen: dict[tuple[Any, ...], int] = {}
    kept_numbers, kept_values = [], []
    for index, key, row in zip(numbers, keys, values, strict=True):
        first = first_seen.setdefault(key, index)
        if first != index:
            errors.append({"row": index, "field": None, "reason": f"the same natural key as row {first}"})
            continue
        kept_numbers.append(index)
        kept_values.append(row)
    return kept_numbers, kept_values


@dataclass(frozen=True)
class _Fields:
    names: tuple[str, ...]  # in the model's order
    known: frozenset[str]
    checks: dict[str, Callable[[Any], Any]]  # an input (or _MISSING) -> the model's value for it, or _REFUSED


@cache
def _fields(model: type[IngestRow]) -> _Fields:
    config = ConfigDict(str_strip_whitespace=model.model_config.get("str_strip_whitespace", False))
    checks = {}
    for name, field in model.model_fields.items():
        # The field's type and constraints, without what only a model field has (its default, validate_default).
        annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        adapter = TypeAdapter(annotation, config=config)
        default = _MISSING if field.is_required() else field.get_default(call_default_factory=True)
        checks[name] = _field_check(adapter, default)
    return _Fields(tuple(model.model_fields), frozenset(model.model_fields), checks)


def _field_check(adapter: TypeAdapter, default: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is _MISSING:
            return _REFUSED if default is _MISSING else default
        try:
            return adapter.validate_python(value)
        except ValidationError:
            return _REFUSED

    return check


def _student_ids(inputs: list[Any]) -> _Column:
    # One per row, so matched directly rather than through the adapter. A value the pattern matches has no spaces to
    # strip: the model keeps it as it is. Any other value is left to the model.
    if set(map(type, inputs)) == {str} and all(map(_STUDENT_ID.match, inputs)):
        return _Column(range(len(inputs)), inputs)
    values = [value if type(value) is str and _STUDENT_ID.match(value) else _REFUSED for value in inputs]
    return _Column(range(len(inputs)), values)

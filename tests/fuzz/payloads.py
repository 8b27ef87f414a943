"""Payloads of the real message types, drawn from each model's own JSON schema, so that
many fuzzed messages pass admission and reach the handlers; and mutations of them that
break one thing at a time (a key dropped, one added, a value of the wrong type, a huge or
deep value).

Only the schema features pydantic emits for the catalogue are understood ($ref, anyOf,
oneOf, const, enum, patterns, bounds, date-time); anything else draws any JSON value.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arcflare.contracts.base import message_class
from hypothesis import strategies as st

#: any code point, lone surrogates and NUL included (a JSON escape can carry them all)
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
#: any JSON value, small: leaves and shallow containers
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        ANY_TEXT)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(ANY_TEXT, inner, max_size=4)),
    max_leaves=12,
)
DATES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.just(UTC)).map(lambda d: d.isoformat())


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _string(schema: dict) -> st.SearchStrategy[str]:
    if schema.get("format") == "date-time":
        return DATES
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: low <= len(s) <= (high or len(s)))
    return st.text(min_size=low, max_size=min(high or 80, 80))


def _number(schema: dict, integers: bool) -> st.SearchStrategy:
    low, high = schema.get("minimum"), schema.get("maximum")
    if integers:
        return st.integers(min_value=low, max_value=high)
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


def _object(schema: dict, root: dict) -> st.SearchStrategy[dict]:
    properties = schema.get("properties", {})
    required = [k for k in schema.get("required", []) if k in properties]
    optional = [k for k in properties if k not in required]
    strategies = {k: from_schema(v, root) for k, v in properties.items()}
    free = st.dictionaries(ANY_TEXT.filter(bool), JSON_VALUES, max_size=2) \
        if schema.get("additionalProperties") is True else st.just({})
    return st.fixed_dictionaries(
        {k: strategies[k] for k in required},
        optional={k: strategies[k] for k in optional},
    ).flatmap(lambda fixed: free.map(lambda extra: {**extra, **fixed}))


def from_schema(schema: dict, root: dict | None = None) -> st.SearchStrategy[Any]:
    """Values that (mostly) validate against a pydantic-made JSON schema."""
    root = root or schema
    schema = _resolve(schema, root)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, root) for s in schema[key]])
    kind = schema.get("type")
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(schema.get("items", {}), root)
        return st.lists(items, min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 3), 3))
    if kind == "object":
        return _object(schema, root)
    return JSON_VALUES


_SCHEMAS: dict[str, st.SearchStrategy[dict]] = {}


def payloads(type_name: str) -> st.SearchStrategy[dict]:
    """Payloads of a message type that its model (mostly) accepts."""
    if type_name not in _SCHEMAS:
        _SCHEMAS[type_name] = from_schema(message_class(type_name).model_json_schema())
    return _SCHEMAS[type_name]


@st.composite
def mutated(draw: st.DrawFn, type_name: str) -> dict:
    """A payload of the type with one thing broken: a key dropped, one added, or a value of
    the wrong type, huge or deeply nested."""
    out = dict(draw(payloads(type_name)))
    how = draw(st.sampled_from(["drop", "add", "retype", "huge", "deep"]))
    keys = sorted(out)
    if how == "drop" and keys:
        out.pop(draw(st.sampled_from(keys)))
    elif how == "add" or not keys:
        out[draw(ANY_TEXT.filter(bool))] = draw(JSON_VALUES)
    else:
        key = draw(st.sampled_from(keys))
        if how == "retype":
            out[key] = draw(JSON_VALUES.filter(lambda v: type(v) is not type(out[key])))
        elif how == "huge":
            out[key] = draw(st.sampled_from(["x" * 70_000, "\u00e9" * 40_000, ["x"] * 30_000,
                                             10 ** 400, -(10 ** 400)]))
        else:
            out[key] = draw(st.sampled_from([[[[[[[[[[[[[[[1]]]]]]]]]]]]]],
                                             {"a": {"b": {"c": {"d": {"e": {}}}}}}]))
    return out



"""Alert rules: what to watch for, how long, how loud, and where to send it.

    sinks:
      - {name: teams, kind: webhook, format: teams, url_env: ARCFLARE_TEAMS_WEBHOOK}
    rules:
      - name: site-down
        event: SiteHealthChanged
        when: {status: {in: [crashed, disconnected]}}
        for: 2m                      # raise only if nothing clears it meanwhile
        cleared_by: [{event: SiteRemoved}]
        severity: critical
        dedup: 10m
        sinks: [log, teams]
        summary: "{site} of {federation} is {status}: {diagnosis}"
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from arcflare.contracts.base import Event, message_types
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

Severity = Literal["info", "warning", "critical"]
OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains")
ENVELOPE_FIELDS = ("federation", "site", "issued_by", "type")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        # pydantic turns ValueError (not TypeError) into a field error with the line
        raise ValueError("a duration is a number of seconds or text like 90s, 2m, 1h")  # noqa: TRY004
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; write seconds or e.g. 90s, 2m, 1h, 1d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _event_types() -> dict[str, type[Event]]:
    return {n: t for n, t in message_types().items() if issubclass(t, Event)}


def _check_event(name: str) -> str:
    if name not in _event_types():
        raise ValueError(f"{name!r} is not an event type; e.g. SiteHealthChanged, JobCompleted")
    if name == "AlertRaised":
        raise ValueError("rules on AlertRaised would alert on their own alerts")
    return name


def _check_conditions(event: str, when: dict[str, Any]) -> None:
    fields = set(_event_types()[event].model_fields) | set(ENVELOPE_FIELDS)
    for name, test in when.items():
        if name.split(".")[0] not in fields:
            raise ValueError(f"{event} has no field {name!r}; it has {', '.join(sorted(fields))}")
        if isinstance(test, dict):
            unknown = [op for op in test if op not in OPERATORS]
            if unknown:
                raise ValueError(f"condition on {name!r}: unknown operator {unknown[0]!r}; "
                                 f"use {', '.join(OPERATORS)}")
            for op in ("in", "not_in"):
                if op in test and not isinstance(test[op], list):
                    raise ValueError(f"condition on {name!r}: {op} takes a list")


class _EventMatch(_Strict):
    """An event type and conditions on its fields, checked against the catalogue."""

    event: str
    when: dict[str, Any] = Field(default_factory=dict)

    @field_validator("event")
    @classmethod
    def _known(cls, value: str) -> str:
        return _check_event(value)

    @field_validator("when")
    @classmethod
    def _fields_exist(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "event" in info.data:
            _check_conditions(info.data["event"], value)
        return value


class Clearing(_EventMatch):
    """An event that cancels a pending for-duration alert of the same key."""


class Rule(_EventMatch):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    for_: Duration | None = Field(default=None, alias="for")
    cleared_by: list[Clearing] = Field(default_factory=list)
    #: what makes two alerts "the same" for dedup and for-duration
    key: list[str] = Field(default_factory=lambda: ["federation", "site"])
    severity: Severity = "warning"
    dedup: Duration = timedelta(minutes=10)
    sinks: list[str] = Field(default_factory=lambda: ["log"], min_length=1)
    summary: str = Field(default="{type} in {federation}", max_length=2000)

    @field_validator("key")
    @classmethod
    def _key_fields_exist(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if "event" in info.data:
            _check_conditions(info.data["event"], {name: None for name in value})
        return value


class Sink(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    kind: Literal["log", "webhook"]
    #: webhook only: payload shape
    format: Literal["teams", "slack", "json"] = "json"
    url: str | None = Field(default=None, pattern=r"^https?://")
    #: or the name of an environment variable holding the URL (keeps tokens out of the file)
    url_env: str | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    retries: int = Field(default=3, ge=0, le=20)
    backoff_s: float = Field(default=1.0, ge=0, le=600)

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if self.kind == "webhook" and not (self.url or self.url_env):
            raise ValueError(f"webhook sink {self.name!r} needs url or url_env")
        return self


class RuleBook(_Strict):
    sinks: list[Sink] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        names = [s.name for s in self.all_sinks()]
        if len(set(names)) != len(names):
            raise ValueError("sinks: names must be unique ('log' is built in)")
        rule_names = [r.name for r in self.rules]
        if len(set(rule_names)) != len(rule_names):
            raise ValueError("rules: names must be unique")
        return self

    def all_sinks(self) -> list[Sink]:
        builtin = [] if any(s.name == "log" for s in self.sinks) else [Sink(name="log", kind="log")]
        return [*builtin, *self.sinks]

    def sink(self, name: str) -> Sink:
        return next(s for s in self.all_sinks() if s.name == name)

    def rules_for(self, event_type: str) -> list[Rule]:
        return [r for r in self.rules if r.event == event_type]

    def clearing_rules(self, event_type: str) -> list[tuple[Rule, Clearing | None]]:
        """Rules a `event_type` event may clear: their own type (when it no longer
        matches) or a listed clearing event."""
        found: list[tuple[Rule, Clearing | None]] = []
        for rule in self.rules:
            if rule.for_ is None:
                continue
            if rule.event == event_type:
                found.append((rule, None))
            found += [(rule, c) for c in rule.cleared_by if c.event == event_type]
        return found

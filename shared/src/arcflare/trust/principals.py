"""Who may sign a message: persons, services, site agents, the NVFlare bridge of a federation —
and the intermediate issuer that hands out site and bridge identities.

A principal has two spellings: `.id`, what the envelope's `issued_by` carries, and `.uri`, the
SAN URI in its certificate. Both parse back, and every name is checked with the patterns the
message contracts use, so a certificate cannot name a principal that no message could.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from arcflare.contracts.fields import Email, FederationName, OrgName, SiteName
from pydantic import Field, TypeAdapter, ValidationError

Kind = Literal["person", "service", "site", "bridge", "issuer"]
KINDS: tuple[str, ...] = get_args(Kind)
URN_PREFIX = "urn:arcflare:"

ServiceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]

_RULES: dict[str, tuple[TypeAdapter, str]] = {
    "email": (TypeAdapter(Email), "an email address"),
    "federation": (TypeAdapter(FederationName),
                   "a federation name: letters, digits, '-', '_' (at most 63)"),
    "site": (TypeAdapter(SiteName), "a site name: letters, digits, '-', '_' (at most 63)"),
    "org": (TypeAdapter(OrgName), "an organisation: letters, digits, '_' (at most 63)"),
    "name": (TypeAdapter(ServiceName),
             "a name of lowercase letters, digits and '-', starting with a letter (at most 63)"),
}


def _check(field: str, value: str | None) -> str:
    adapter, allowed = _RULES[field]
    if value is None:
        raise ValueError(f"a principal needs a {field}; it must be {allowed}")
    try:
        return adapter.validate_python(value)
    except ValidationError:
        raise ValueError(f"{field} {value!r} is not valid: it must be {allowed}") from None


@dataclass(frozen=True)
class Principal:
    kind: Kind
    #: person: the email (lowercase); service and issuer: their name
    name: str | None = None
    federation: str | None = None
    site: str | None = None
    #: persons only: the organisation in the certificate's Subject O
    org: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"principal kind {self.kind!r} is not one of {', '.join(KINDS)}")
        needed = {"person": ("email",), "service": ("name",), "issuer": ("name",),
                  "site": ("federation", "site"), "bridge": ("federation",)}[self.kind]
        values = {"email": self.name, "name": self.name, "federation": self.federation,
                  "site": self.site}
        for field in needed:
            _check(field, values[field])
        if self.kind == "person" and self.name != self.name.lower():
            object.__setattr__(self, "name", self.name.lower())
        if self.org is not None:
            _check("org", self.org)

    @classmethod
    def person(cls, email: str, org: str | None = None) -> Principal:
        return cls("person", name=_check("email", email).lower(), org=org)

    @classmethod
    def service(cls, name: str) -> Principal:
        return cls("service", name=name)

    @classmethod
    def site_agent(cls, federation: str, site: str) -> Principal:
        return cls("site", federation=federation, site=site)

    @classmethod
    def bridge(cls, federation: str) -> Principal:
        return cls("bridge", federation=federation)

    @classmethod
    def issuer(cls, name: str) -> Principal:
        return cls("issuer", name=name)

    @property
    def id(self) -> str:
        """The string in the envelope's `issued_by`."""
        return {
            "person": lambda: self.name,
            "service": lambda: f"service:{self.name}",
            "site": lambda: f"site:{self.federation}/{self.site}",
            "bridge": lambda: f"bridge:{self.federation}",
            "issuer": lambda: f"issuer:{self.name}",
        }[self.kind]()

    @property
    def uri(self) -> str:
        """The SAN URI of the principal's certificate."""
        tail = {
            "person": lambda: self.name,
            "service": lambda: self.name,
            "site": lambda: f"{self.federation}:{self.site}",
            "bridge": lambda: self.federation,
            "issuer": lambda: self.name,
        }[self.kind]()
        return f"{URN_PREFIX}{self.kind}:{tail}"

    def __str__(self) -> str:
        return self.id

    @classmethod
    def from_id(cls, text: str) -> Principal:
        """Parse an `issued_by`: an email, service:<name>, site:<federation>/<site>,
        bridge:<federation> or issuer:<name>."""
        kind, sep, rest = text.partition(":")
        if not sep:
            if "@" in text:
                return cls.person(text)
            raise ValueError(f"principal {text!r} is neither an email nor "
                             "service:<name>, site:<federation>/<site>, bridge:<federation>")
        if kind == "site":
            federation, slash, site = rest.partition("/")
            if not slash:
                raise ValueError(f"site principal {text!r} must read site:<federation>/<site>")
            return cls.site_agent(federation, site)
        return cls._named(kind, rest, text)

    @classmethod
    def from_uri(cls, uri: str) -> Principal:
        """Parse a certificate's SAN URI, urn:arcflare:<kind>:<name>."""
        if not uri.startswith(URN_PREFIX):
            raise ValueError(f"URI {uri!r} is not an ArcFlare principal ({URN_PREFIX}<kind>:...)")
        kind, sep, rest = uri[len(URN_PREFIX):].partition(":")
        if not sep:
            raise ValueError(f"URI {uri!r} names no principal after its kind")
        if kind == "person":
            return cls.person(rest)
        if kind == "site":
            federation, colon, site = rest.partition(":")
            if not colon:
                raise ValueError(f"site URI {uri!r} must read {URN_PREFIX}site:<federation>:<site>")
            return cls.site_agent(federation, site)
        return cls._named(kind, rest, uri)

    @classmethod
    def _named(cls, kind: str, rest: str, text: str) -> Principal:
        factories = {"service": cls.service, "bridge": cls.bridge, "issuer": cls.issuer}
        if kind not in factories:
            raise ValueError(f"principal {text!r} has unknown kind {kind!r}; "
                             f"expected one of {', '.join(KINDS)}")
        return factories[kind](rest)


def is_arcflare_uri(uri: str) -> bool:
    return uri.startswith(URN_PREFIX)

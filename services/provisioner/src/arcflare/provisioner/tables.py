"""The provisioner's own tables: federations, their sites and every certificate issued.

No key material here: kits are referenced, certificates are fingerprints and dates.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from arcflare.contracts.authz import FederationAccess
from arcflare.contracts.commands import AdminSpec, CreateFederation
from arcflare.runtime import Rejected

MIGRATIONS = [
    """
    CREATE TABLE federations (
        name TEXT PRIMARY KEY,
        spec TEXT NOT NULL,              -- the CreateFederation payload, as given
        server_host TEXT NOT NULL,
        server_port INTEGER NOT NULL,    -- chosen once (local mode: a free port) and kept
        server_org TEXT NOT NULL,
        root_valid_days INTEGER NOT NULL,
        ca_fingerprint TEXT NOT NULL,
        server_kit_ref TEXT NOT NULL,
        admin_kit_ref TEXT NOT NULL,
        admin_name TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE sites (
        federation TEXT NOT NULL REFERENCES federations(name),
        name TEXT NOT NULL,
        org TEXT NOT NULL,
        compute TEXT NOT NULL,
        kit_ref TEXT,
        cert_fingerprint TEXT NOT NULL,
        not_after TEXT NOT NULL,
        status TEXT NOT NULL,            -- provisioned | removed
        PRIMARY KEY (federation, name)
    );
    CREATE TABLE certificates (
        federation TEXT NOT NULL,
        participant TEXT NOT NULL,
        kind TEXT NOT NULL,              -- ca | server | client | admin
        fingerprint TEXT NOT NULL,
        not_after TEXT NOT NULL,
        warn_at TEXT,                    -- when CertificateExpiring was scheduled for
        warned_at TEXT,                  -- when it was published at once (already in the window)
        PRIMARY KEY (federation, fingerprint)
    );
    """,
    # the scheduled CertificateExpiring's message id: removing the site cancels it
    "ALTER TABLE certificates ADD COLUMN warning_id TEXT",
    # the site's data inputs ([DataInput] JSON), passed on in SiteProvisioned
    "ALTER TABLE sites ADD COLUMN data TEXT NOT NULL DEFAULT '[]'",
    # the certificate a renewal replaced this one with (NULL: the participant's current one)
    "ALTER TABLE certificates ADD COLUMN replaced_by TEXT",
]


@dataclass(frozen=True)
class Federation:
    name: str
    spec_json: str  # parsed on first use: validating every site is O(sites), AddSite needs none
    server_host: str
    server_port: int
    server_org: str
    root_valid_days: int
    ca_fingerprint: str
    server_kit_ref: str
    admin_kit_ref: str
    admin_name: str

    @property
    def endpoint(self) -> str:
        return f"{self.server_host}:{self.server_port}"

    @cached_property
    def spec(self) -> CreateFederation:
        return CreateFederation.model_validate_json(self.spec_json)


@dataclass(frozen=True)
class Site:
    federation: str
    name: str
    org: str
    compute: dict
    kit_ref: str | None
    cert_fingerprint: str
    not_after: datetime
    status: str
    data: list = field(default_factory=list)


def federation(db: sqlite3.Connection, name: str) -> Federation | None:
    row = db.execute("SELECT * FROM federations WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    return Federation(
        name=row["name"], spec_json=row["spec"],
        server_host=row["server_host"], server_port=row["server_port"],
        server_org=row["server_org"], root_valid_days=row["root_valid_days"],
        ca_fingerprint=row["ca_fingerprint"], server_kit_ref=row["server_kit_ref"],
        admin_kit_ref=row["admin_kit_ref"], admin_name=row["admin_name"],
    )


def known_federation(db: sqlite3.Connection, name: str) -> Federation:
    """The federation, or a rejection naming it: commands about others cannot be carried out."""
    found = federation(db, name)
    if found is None:
        raise Rejected("not_found", f"federation {name} does not exist; create it first",
                       errors=[{"field": "federation", "problem": "no such federation"}])
    return found


def site(db: sqlite3.Connection, federation_name: str, name: str) -> Site | None:
    row = db.execute(
        "SELECT * FROM sites WHERE federation = ? AND name = ?", (federation_name, name)
    ).fetchone()
    return _site(row) if row else None


def sites(db: sqlite3.Connection, federation_name: str, status: str = "provisioned") -> list[Site]:
    rows = db.execute(
        "SELECT * FROM sites WHERE federation = ? AND status = ? ORDER BY rowid",
        (federation_name, status),
    ).fetchall()
    return [_site(r) for r in rows]


def _site(row: sqlite3.Row) -> Site:
    return Site(
        federation=row["federation"], name=row["name"], org=row["org"],
        compute=json.loads(row["compute"]), kit_ref=row["kit_ref"],
        cert_fingerprint=row["cert_fingerprint"],
        not_after=datetime.fromisoformat(row["not_after"]), status=row["status"],
        data=json.loads(row["data"]),
    )


def access(db: sqlite3.Connection, federation_name: str) -> FederationAccess | None:
    """Who may act on this federation (for the runtime's authorization check).

    Runs before every command, so it reads only the admins and the site orgs: parsing
    the whole spec and every site row would make each AddSite O(sites) for nothing.
    """
    row = db.execute("SELECT spec FROM federations WHERE name = ?", (federation_name,)).fetchone()
    if row is None:
        return None
    admins = [AdminSpec.model_validate(a) for a in json.loads(row["spec"])["admins"]]
    site_orgs = dict(db.execute(
        "SELECT name, org FROM sites WHERE federation = ? AND status = 'provisioned'",
        (federation_name,),
    ).fetchall())
    return FederationAccess(admins=admins, site_orgs=site_orgs)


@dataclass(frozen=True)
class Certificate:
    fingerprint: str
    not_after: datetime
    participant: str = ""
    kind: str = ""


def _certificate(row: sqlite3.Row) -> Certificate:
    return Certificate(row["fingerprint"], datetime.fromisoformat(row["not_after"]),
                       row["participant"], row["kind"])


def newest_certificate(db: sqlite3.Connection, federation_name: str,
                       kind: str) -> Certificate | None:
    """The current certificate of a kind there is one of (ca, server) in the federation."""
    row = db.execute(
        "SELECT * FROM certificates WHERE federation = ? AND kind = ? AND replaced_by IS NULL"
        " ORDER BY not_after DESC LIMIT 1", (federation_name, kind),
    ).fetchone()
    return _certificate(row) if row else None


def current_certificates(db: sqlite3.Connection, federation_name: str,
                         participant: str | None = None,
                         kind: str | None = None) -> list[Certificate]:
    """The certificates in use (not replaced by a renewal), of one participant or kind."""
    sql, args = ("SELECT * FROM certificates WHERE federation = ? AND replaced_by IS NULL",
                 [federation_name])
    for column, value in (("participant", participant), ("kind", kind)):
        if value is not None:
            sql, args = sql + f" AND {column} = ?", [*args, value]
    return [_certificate(r) for r in db.execute(sql + " ORDER BY participant", args)]

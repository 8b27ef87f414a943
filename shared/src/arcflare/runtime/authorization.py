"""The runtime hook for the role policy in arcflare.contracts.authz.

Each service knows its federations' admins from its own state (FederationProvisioned);
`lookup(db, federation)` reads them. A refusal is permanent: CommandRejected with
reason `unauthorized`, and the command dead-lettered.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable

from arcflare.contracts.authz import FederationAccess, command_authorizer
from arcflare.contracts.base import Command
from arcflare.contracts.envelope import Envelope
from arcflare.runtime.errors import Rejected
from arcflare.runtime.state import UnitOfWork

AccessInState = Callable[[sqlite3.Connection, str], FederationAccess | None]


def enforce_policy(lookup: AccessInState) -> Callable[..., None]:
    def authorize(envelope: Envelope, command: Command, *, uow: UnitOfWork) -> None:
        refusal = command_authorizer(lambda name: lookup(uow.db, name))(command, envelope)
        if refusal:
            raise Rejected("unauthorized", refusal)

    return authorize

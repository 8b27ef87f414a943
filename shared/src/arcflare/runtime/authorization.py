"""The runtime hook for the role policy in arcflare.contracts.authz.

Each service knows its federations' admins from its own state (FederationProvisioned);
`lookup(db, federation)` reads them. A refusal is permanent: CommandRejected with
reason `Forbidden`, and the command dead-lettered. A federation the service does not know
is never a pass: the command is retried for a while (it may have overtaken the
FederationProvisioned that introduces the federation), then refused.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable

from arcflare.contracts.authz import UNKNOWN_FEDERATION, FederationAccess, command_authorizer
from arcflare.contracts.base import Command
from arcflare.contracts.envelope import Envelope
from arcflare.runtime.errors import Rejected
from arcflare.runtime.state import UnitOfWork

AccessInState = Callable[[sqlite3.Connection, str], FederationAccess | None]


#: how long a command for a federation this service has not heard of yet is retried
ARRIVAL_GRACE_S = 30.0


def enforce_policy(lookup: AccessInState, *, source_of_truth: bool = False) -> Callable[..., None]:
    """source_of_truth: this service creates federations (the provisioner), so one it does not
    know does not exist — refused at once as not_found instead of waited for."""

    def authorize(envelope: Envelope, command: Command, *, uow: UnitOfWork) -> None:
        check = command_authorizer(lambda name: lookup(uow.db, name))
        refusal = check(command, envelope)
        if refusal is UNKNOWN_FEDERATION:
            federation = envelope.federation or getattr(command, "federation", None)
            if source_of_truth:
                raise Rejected("not_found", f"federation {federation} does not exist; create "
                               "it first", errors=[{"field": "federation",
                                                    "problem": "no such federation"}])
            raise Rejected("Forbidden", f"federation {federation!r} is not known here, so no "
                           "one may order anything about it yet", retry_for_s=ARRIVAL_GRACE_S)
        if refusal:
            raise Rejected("Forbidden", refusal)

    return authorize

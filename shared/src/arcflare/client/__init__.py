"""The Python SDK: send commands, wait for their outcome, follow events.

    from arcflare.client import Client
    from arcflare.contracts.commands import RefreshFederationStatus

    client = Client()                       # ARCFLARE_* settings, ./.arcflare by default
    command_id = client.send(RefreshFederationStatus(federation="hospitals"))
    outcome = client.wait(command_id, timeout=60)
    print(outcome.type, outcome.payload)
"""
from arcflare.client.client import Client, CommandFailed

__all__ = ["Client", "CommandFailed"]

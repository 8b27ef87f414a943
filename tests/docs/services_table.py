"""README's services table: what each service listens to, read from the topology (the one
source of routing, checked against every handler table at start-up)."""
from __future__ import annotations

from arcflare.contracts.topology import TOPOLOGY

OWNS = {
    "provisioner": "federations, the CA, startup kits (with the agents' and bridge's identities)",
    "deployer": "where the server and each site run (local processes or Azure ML jobs)",
    "job-controller": "NVFlare jobs and the federation's status, through the FLARE API",
    "metrics-relay": "MLflow runs and registered models",
    "site-agent": "nothing central; one per hospital",
    "alerter": "alert rules, webhook deliveries",
    "ledger": "the audit trail and the read model behind `arcflare status` and the console",
}


def listens_to(service: str) -> str:
    parts = []
    if TOPOLOGY.queue(service):
        parts.append(f"queue `{service}`")
    for topic in TOPOLOGY.topics:
        sub = TOPOLOGY.subscription(topic.name, service)
        if sub is None:
            continue
        kinds = sorted(r.subject for r in sub.rules if r.subject)
        parts.append(f"`{topic.name}`: " + (", ".join(kinds) if kinds else "everything"))
    if service == "site-agent":
        parts.append("its own `site-commands` subscription (`<federation>.<site>`)")
    return "; ".join(parts)


def table() -> str:
    lines = ["| service | owns | listens to |", "|---|---|---|"]
    lines += [f"| {name} | {owns} | {listens_to(name)} |" for name, owns in OWNS.items()]
    return "\n".join(lines)

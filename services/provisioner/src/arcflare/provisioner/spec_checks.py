"""What a federation spec must satisfy beyond its schema, and how two specs differ.

The schema (arcflare.contracts) already applies NVFlare's name patterns, port
range, roles and validity days; the runtime rejects a payload that breaks it.
What is left needs the whole spec: participant names NVFlare would see twice,
names the deployer reserves, computes that cannot run.
"""
from __future__ import annotations

from arcflare.contracts.commands import CreateFederation, SiteSpec
from arcflare.contracts.fields import ComputeSpec

#: the deployer's name for the server's kit and workspace
RESERVED_SITE_NAMES = frozenset({"server"})

FieldError = dict[str, str]


def site_name_problem(name: str, server_host: str) -> str | None:
    if name.lower() in RESERVED_SITE_NAMES:
        return f"'{name}' is reserved for the federation's server; choose another site name"
    if name.lower() == server_host.lower():
        return (f"'{name}' is the server's host name, and NVFlare needs every participant "
                "name to be unique; choose another site name")
    return None


def compute_problem(compute: ComputeSpec) -> str | None:
    if compute.backend == "azureml" and not compute.compute:
        return "backend azureml needs the name of an Azure ML compute (Arc Kubernetes or cluster)"
    return None


def federation_problems(spec: CreateFederation) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, site in enumerate(spec.sites):
        if problem := site_name_problem(site.name, spec.server.host):
            errors.append({"field": f"sites.{i}.name", "problem": problem})
        if problem := compute_problem(site.compute):
            errors.append({"field": f"sites.{i}.compute.compute", "problem": problem})
    if problem := compute_problem(spec.server.compute):
        errors.append({"field": "server.compute.compute", "problem": problem})
    return errors


def _sites_differences(before: list[SiteSpec], after: list[SiteSpec]) -> list[str]:
    old = {s.name: s for s in before}
    new = {s.name: s for s in after}
    changes = [f"{n} added" for n in new if n not in old]
    changes += [f"{n} removed" for n in old if n not in new]
    for name in (n for n in new if n in old):
        if old[name] != new[name]:
            changes.append(f"{name} changed")
    return changes


def differences(
    existing: CreateFederation, given: CreateFederation, chosen_port: int | None = None
) -> list[FieldError]:
    """The fields in which `given` differs from the spec the federation was created with.

    A port left out (None) means "any", so it matches the port chosen at creation;
    naming the chosen port matches too.
    """
    errors: list[FieldError] = []
    before = existing.model_dump(mode="json", exclude={"sites"})
    after = given.model_dump(mode="json", exclude={"sites"})
    if given.server.port in (None, chosen_port):
        after["server"]["port"] = before["server"]["port"]
    for key in before:
        if key == "server":
            for part in before["server"]:
                if before["server"][part] != after["server"][part]:
                    errors.append({"field": f"server.{part}", "problem":
                                   f"was {before['server'][part]!r}, now {after['server'][part]!r}"})
        elif before[key] != after[key]:
            errors.append({"field": key, "problem": f"was {before[key]!r}, now {after[key]!r}"})
    if changes := _sites_differences(existing.sites, given.sites):
        errors.append({"field": "sites", "problem": ", ".join(changes)})
    return errors

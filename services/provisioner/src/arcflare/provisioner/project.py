"""A federation spec as NVFlare's own project definition (project.yml, api_version 3).

The dict built here is exactly what `nvflare provision -p project.yml` reads, and
it goes through NVFlare's own `prepare_project` / `prepare_builders`.
"""
from __future__ import annotations

from dataclasses import dataclass

from arcflare.contracts.commands import AdminSpec, CreateFederation

#: the builders `nvflare provision` runs for its sample project, in its order
BUILDER_PATHS = (
    "nvflare.lighter.impl.workspace.WorkspaceBuilder",
    "nvflare.lighter.impl.static_file.StaticFileBuilder",
    "nvflare.lighter.impl.cert.CertBuilder",
    "nvflare.lighter.impl.signature.SignatureBuilder",
)


@dataclass(frozen=True)
class ServerEndpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def project_admin(admins: list[AdminSpec]) -> AdminSpec:
    """The admin the FLARE API logs in as: the first project_admin."""
    return next(a for a in admins if a.role == "project_admin")


def _builders(root_valid_days: int) -> list[dict]:
    builders: list[dict] = [{"path": path} for path in BUILDER_PATHS]
    builders[1]["args"] = {"config_folder": "config"}
    builders[2]["args"] = {"root_valid_days": root_valid_days}
    return builders


def _server(endpoint: ServerEndpoint, org: str) -> dict:
    return {"name": endpoint.host, "type": "server", "org": org, "fed_learn_port": endpoint.port}


def project_dict(
    federation: str,
    endpoint: ServerEndpoint,
    server_org: str,
    sites: list[tuple[str, str]],
    admins: list[AdminSpec],
    root_valid_days: int,
) -> dict:
    """NVFlare's project.yml as a dict: one server, the given clients and admins."""
    participants = [_server(endpoint, server_org)]
    participants += [{"name": name, "type": "client", "org": org} for name, org in sites]
    participants += [
        {"name": a.email, "type": "admin", "org": a.org, "role": a.role} for a in admins
    ]
    return {
        "api_version": 3,
        "name": federation,
        "description": f"ArcFlare federation {federation}",
        "participants": participants,
        "builders": _builders(root_valid_days),
    }


def federation_project(spec: CreateFederation, endpoint: ServerEndpoint) -> dict:
    return project_dict(
        spec.name,
        endpoint,
        project_admin(spec.admins).org,
        [(s.name, s.org) for s in spec.sites],
        spec.admins,
        spec.cert_validity_days,
    )


def one_site_project(
    federation: str, endpoint: ServerEndpoint, server_org: str, site: str, org: str,
    root_valid_days: int,
) -> dict:
    """The server and one new client: what AddSite provisions, whatever the federation's size.

    The server is there for what the client's kit says about it (fed_client.json);
    nothing of it is built again (new_site_builders). Only the client is new, so
    exactly one certificate is signed.
    """
    return project_dict(federation, endpoint, server_org, [(site, org)], [], root_valid_days)


def renewal_project(
    federation: str, endpoint: ServerEndpoint, server_org: str, root_valid_days: int, *,
    site: tuple[str, str] | None = None, admin: AdminSpec | None = None,
) -> dict:
    """The server and the one participant renewed: a site (name, org), an admin, or — with
    neither — the server itself. Only that participant's kit is built (renewal_builders)."""
    return project_dict(federation, endpoint, server_org, [site] if site else [],
                        [admin] if admin else [], root_valid_days)

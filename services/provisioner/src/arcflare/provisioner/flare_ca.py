"""One federation's NVFlare provisioning workspace: its CA state and scratch builds.

Provisioning runs NVFlare's own Provisioner and builders over a project dict.
NVFlare keeps the CA (and every certificate it signed) in `<workspace>/state/cert.json`
and reuses it on every later run, so the CA is minted once, on the first run, and
never again while that file exists. The folder is 0700 and cert.json 0600.

A new site is built by the same builders with two differences that keep it fast
whatever the federation's size: the CA comes in already loaded (flare_cache), through
NVFlare's own "project provides the root credentials" path, and the server in its
project only describes the endpoint the site connects to: nothing of the server is
built, its key never loaded (new_site_builders). A renewal is built the same way, with
a certificate builder that issues the renewed participant a new pair (renewal_builders).
"""
from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from arcflare.flare.kits import PRIVATE_FILE_MODE
from arcflare.observability.tracing import traced
from arcflare.provisioner.certificates import CertificateFacts, facts, read_facts
from arcflare.provisioner.flare_cache import ParsedTemplates, ca_credentials
from arcflare.provisioner.new_site_builders import for_new_sites
from arcflare.provisioner.renewal_builders import for_renewal
from arcflare.runtime import get_logger
from arcflare.trust.files import private_dir
from cryptography import x509
from nvflare.lighter.constants import CtxKey
from nvflare.lighter.entity import Project
from nvflare.lighter.prov_utils import prepare_builders
from nvflare.lighter.provision import prepare_project
from nvflare.lighter.provisioner import Provisioner
from nvflare.lighter.spec import Builder
from opentelemetry.trace import SpanKind

log = get_logger("arcflare.provisioner.flare")

CERT_FILE = {"server": "server.crt", "client": "client.crt", "admin": "client.crt"}


class ProvisioningFailed(RuntimeError):
    """NVFlare's provisioner reported errors (it removes its partial output itself)."""


@dataclass(frozen=True)
class BuiltKit:
    participant: str
    kind: str  # server | client | admin
    folder: Path
    certificate: CertificateFacts


class _FlareLog:
    """NVFlare's provisioning messages, into our log at debug (they name files, not keys)."""

    def debug(self, msg: str) -> None:
        log.debug("nvflare", detail=msg)

    info = debug

    def warning(self, msg: str) -> None:
        log.warning("nvflare", detail=msg)

    def error(self, msg: str) -> None:
        log.error("nvflare", detail=msg)


class FederationCA:
    def __init__(self, root: Path, federation: str) -> None:
        self.root = Path(root)
        self.federation = federation
        # NVFlare's layout: <root_dir>/<project name>/{state,wip,prod_NN}
        self.workspace = self.root / federation
        self.state_file = self.workspace / "state" / "cert.json"

    def exists(self) -> bool:
        return self.state_file.is_file()

    def root_certificate(self) -> CertificateFacts:
        state = json.loads(self.state_file.read_text())
        return facts(x509.load_pem_x509_certificate(state[CtxKey.ROOT_CERT].encode("ascii")))

    @traced("nvflare provision", kind=SpanKind.INTERNAL)
    def provision(self, project: dict) -> tuple[Path, list[BuiltKit]]:
        """Build every participant of `project`; returns the scratch folder and the kits in it.

        Mints the CA if there is no state yet, else reuses it (and every certificate in it).
        """
        given = copy.deepcopy(project)  # NVFlare consumes the dict it is given
        return self._build(prepare_builders(given), prepare_project(given),
                           project["participants"])

    @traced("nvflare provision sites", kind=SpanKind.INTERNAL)
    def provision_sites(self, project: dict) -> tuple[Path, list[BuiltKit]]:
        """Build the clients of `project` (its server only names the endpoint), signed by
        the existing CA; returns the scratch folder and the client kits in it."""
        given = for_new_sites(copy.deepcopy(project))
        clients = [p for p in project["participants"] if p["type"] == "client"]
        return self._build(prepare_builders(given), self._with_ca(given), clients)

    def renew(self, project: dict, participant: str, kind: str) -> tuple[Path, BuiltKit]:
        """A new key and certificate for `participant` (of `kind`; the server's name for the
        server) signed by the existing CA, in a freshly built kit; returns the scratch folder
        and that kit. The CA state then holds the new pair in place of the old."""
        given = for_renewal(copy.deepcopy(project), participant, kind)
        renewed = [p for p in project["participants"]
                   if p["type"] == kind and p["name"] == participant]
        built, (kit,) = self._build(prepare_builders(given), self._with_ca(given), renewed)
        return built, kit

    def _with_ca(self, given: dict) -> Project:
        """The project with the CA loaded (once per process, flare_cache) through NVFlare's
        own "project provides the root credentials" path."""
        flare_project = prepare_project(given)
        ca = ca_credentials(self.state_file)
        flare_project.serialized_root_cert = ca.serialized_cert
        flare_project.root_private_key = ca.private_key
        return flare_project

    def _build(self, builders: list[Builder], flare_project: Project,
               kept: list[dict]) -> tuple[Path, list[BuiltKit]]:
        private_dir(self.workspace)
        context = Provisioner(str(self.root), [ParsedTemplates(), *builders]).provision(
            flare_project, logger=_FlareLog()
        )
        self._lock_state()
        output = context.get_result_location()
        if context.get(CtxKey.BUILD_ERROR) or not output:
            errors = "; ".join(context.get_errors()) or "no output folder"
            raise ProvisioningFailed(f"NVFlare provisioning of {self.federation} failed: {errors}")
        built = Path(output)
        kits = [
            BuiltKit(
                participant=p["name"],
                kind=p["type"],
                folder=built / p["name"],
                certificate=read_facts(built / p["name"] / "startup" / CERT_FILE[p["type"]]),
            )
            for p in kept
        ]
        return built, kits

    def discard(self, built: Path) -> None:
        shutil.rmtree(built, ignore_errors=True)

    def _lock_state(self) -> None:
        state_dir = self.state_file.parent
        if state_dir.is_dir():
            private_dir(state_dir)
        if self.state_file.is_file():
            os.chmod(self.state_file, PRIVATE_FILE_MODE)

"""What NVFlare parses again on every provisioning run, parsed once per process instead.

Profiled, an AddSite in a 100-site federation spent most of its time in NVFlare's
fixed work: parsing master_template.yml (~70 ms of YAML) and loading the CA's RSA
key from state/cert.json (~55 ms, mostly OpenSSL checking the key). Neither depends
on the site being added, so both are kept here, parsed:

- the template, by its path and modification time (it changes only with NVFlare);
- the CA, by a digest of the root certificate and key text in cert.json. The file's
  mtime would not do: NVFlare rewrites cert.json on every run to record the subject it
  signed. The digest changes exactly when the CA does (a restored or replaced state),
  and then the key is loaded again.

Keeping the CA key object in memory does not widen who can reach it: the provisioner
reads cert.json (0600, in its own data dir) on every run anyway, and NVFlare's state
loader holds every key in that file as text while it runs. The object never leaves
the process and its repr carries no key bytes.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import nvflare.lighter
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from nvflare.lighter.constants import CtxKey
from nvflare.lighter.ctx import ProvisionContext
from nvflare.lighter.entity import Project
from nvflare.lighter.spec import Builder
from nvflare.lighter.utils import load_private_key, load_yaml

#: the template StaticFileBuilder loads (by this name, from NVFlare's templates folder)
MASTER_TEMPLATE = "master_template.yml"
TEMPLATES_DIR = Path(nvflare.lighter.__file__).parent / "templates"
#: one entry per CA in use; a provisioner serves a handful of federations
MAX_CAS = 64

_lock = threading.Lock()
_templates: dict[tuple[str, int], dict] = {}
_cas: OrderedDict[str, CACredentials] = OrderedDict()


@dataclass(frozen=True)
class CACredentials:
    serialized_cert: bytes  # the root certificate, PEM, as NVFlare writes it into each kit
    private_key: PrivateKeyTypes = field(repr=False)


def template(name: str = MASTER_TEMPLATE) -> dict:
    """A fresh copy of NVFlare's template `name`, parsed once per file version."""
    path = TEMPLATES_DIR / name
    key = (name, os.stat(path).st_mtime_ns)
    with _lock:
        parsed = _templates.get(key)
    if parsed is None:
        parsed = load_yaml(str(path))  # NVFlare's own loader, as ctx.load_templates uses it
        with _lock:
            _templates[key] = parsed
    return copy.deepcopy(parsed)  # builders get a dict of their own, as from the file


def ca_credentials(state_file: Path) -> CACredentials:
    """The CA recorded in NVFlare's `state/cert.json`, its key loaded once per CA."""
    state = json.loads(Path(state_file).read_text())
    cert_pem, key_pem = state[CtxKey.ROOT_CERT], state[CtxKey.ROOT_PRI_KEY]
    digest = hashlib.sha256(f"{cert_pem}\0{key_pem}".encode("ascii")).hexdigest()
    with _lock:
        found = _cas.get(digest)
        if found is not None:
            _cas.move_to_end(digest)
            return found
    # outside the lock: loading a key takes tens of ms; a racing duplicate load is harmless
    loaded = CACredentials(cert_pem.encode("ascii"), load_private_key(key_pem))
    with _lock:
        _cas[digest] = loaded
        while len(_cas) > MAX_CAS:
            _cas.popitem(last=False)
    return loaded


def forget() -> None:
    """Drop everything cached (tests; a process that wants the keys out of memory)."""
    with _lock:
        _templates.clear()
        _cas.clear()


class ParsedTemplates(Builder):
    """Hands StaticFileBuilder NVFlare's master template already parsed.

    Runs first: `ctx.load_templates` skips a file it lists as loaded, so the
    builders that ask for the template find it in the context instead of parsing it.
    """

    def initialize(self, project: Project, ctx: ProvisionContext) -> None:
        loaded = ctx[CtxKey.TEMP_FILES_LOADED]
        if MASTER_TEMPLATE not in loaded:
            ctx[CtxKey.TEMPLATE].update(template(MASTER_TEMPLATE))
            loaded.append(MASTER_TEMPLATE)

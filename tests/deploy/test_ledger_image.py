"""The ledger image listens on every address, so it must answer only authenticated reads and
only under the names it is reached by (its settings refuse to start otherwise)."""
from __future__ import annotations

import shlex
from pathlib import Path

from arcflare.ledger.settings import LedgerSettings
from arcflare.runtime.addresses import is_loopback

ROOT = Path(__file__).resolve().parents[2]


def image_env(dockerfile: Path) -> dict[str, str]:
    """The ENV settings of a Dockerfile's last stage (continuation lines joined)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    stage = text.rsplit("\nFROM ", 1)[-1]
    env: dict[str, str] = {}
    for line in stage.splitlines():
        if line.startswith("ENV "):
            env.update(token.split("=", 1) for token in shlex.split(line[4:]))
    return env


def test_the_ledger_image_binds_every_address_only_with_the_names_it_answers_to(
        monkeypatch) -> None:
    env = image_env(ROOT / "deploy" / "docker" / "ledger.Dockerfile")
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = LedgerSettings()

    assert settings.ledger_host == "0.0.0.0" and not is_loopback(settings.ledger_host)
    assert settings.ledger_allowed_hosts == ["ledger"]

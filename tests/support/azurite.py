"""Azurite, Microsoft's Azure Storage emulator (npm package `azurite`), for the azureblob
artifact store's tests and benchmark: installed under .tools/ on first use, started on a
free loopback port, stopped at the end.

    .venv/bin/python -m tests.support.azurite install    # what `make test` runs first

Without Node.js the tests that need it are skipped and say so; with Node, a missing
Azurite is installed, never skipped.
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
VERSION = "3.35.0"
BLOB_SERVER = TOOLS / "node_modules" / ".bin" / "azurite-blob"
#: Azurite's documented development account (public, the same in every Azurite)
ACCOUNT = "devstoreaccount1"
KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
_LISTENING = re.compile(r"listens on http://127\.0\.0\.1:(\d+)")


class AzuriteUnavailable(RuntimeError):
    """No Node.js on this machine: nothing can run Azurite."""


def node_missing() -> str | None:
    """Why Azurite cannot run here, or None."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: Azurite (the Azure Storage emulator) needs Node.js"
    return None


def ensure_installed() -> Path:
    """The azurite-blob launcher, installed with npm under .tools/ when missing."""
    if BLOB_SERVER.exists():
        return BLOB_SERVER
    if why := node_missing():
        raise AzuriteUnavailable(why)
    subprocess.run(["npm", "install", "--prefix", str(TOOLS), "--no-audit", "--no-fund",
                    "--loglevel=error", f"azurite@{VERSION}"], check=True, timeout=600)
    if not BLOB_SERVER.exists():
        raise RuntimeError(f"npm installed azurite@{VERSION} but {BLOB_SERVER} is missing")
    return BLOB_SERVER


@dataclass(frozen=True)
class Azurite:
    port: int
    pid: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={self.endpoint};")


@contextmanager
def running_azurite(timeout: float = 60.0) -> Iterator[Azurite]:
    """A blob service on a free loopback port, in memory, stopped (and waited for) at exit."""
    server = ensure_installed()
    with tempfile.TemporaryDirectory(prefix="azurite-") as workdir:
        log = Path(workdir) / "azurite.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(server), "--blobHost", "127.0.0.1", "--blobPort", "0",
                 "--inMemoryPersistence", "--silent", "--skipApiVersionCheck", "--loose",
                 "--disableTelemetry"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=workdir)
        try:
            yield Azurite(_port_from(log, proc, timeout), proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _port_from(log: Path, proc: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _LISTENING.search(log.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"Azurite exited ({proc.returncode}): {log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"Azurite did not listen within {timeout:.0f} s: "
                       f"{log.read_text()[-2000:]}")


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m tests.support.azurite install")
    if why := node_missing():
        print(f"skipping Azurite: {why}; the azureblob tests will be skipped")
        sys.exit(0)
    print(ensure_installed())

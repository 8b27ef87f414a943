"""What the deployer hands the NVFlare processes it starts: where the bus is (the bridge in the
server reports there), never its own identity or any other of its settings."""
from __future__ import annotations

from pathlib import Path

from arcflare.deployer.adapters.local import _environment
from arcflare.deployer.compute import Target


def test_nvflare_learns_where_the_bus_is_and_nothing_else_of_the_deployer(
        monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARCFLARE_BUS_FILE", "/shared/bus.db")
    monkeypatch.setenv("ARCFLARE_SERVICEBUS_NAMESPACE", "ns.servicebus.windows.net")
    monkeypatch.setenv("ARCFLARE_IDENTITY_KEY", "/secrets/deployer/key.pem")
    monkeypatch.setenv("ARCFLARE_ARTIFACT_BLOB_CONNECTION_STRING", "AccountKey=secret")
    monkeypatch.setenv("ARCFLARE_DATA_DIR", "/data/deployer")

    env = _environment(tmp_path, Target("fed", "site-1", "file:/kit"))

    assert env["ARCFLARE_BUS_FILE"] == "/shared/bus.db"
    assert env["ARCFLARE_SERVICEBUS_NAMESPACE"] == "ns.servicebus.windows.net"
    assert {k for k in env if k.startswith("ARCFLARE_")} == {
        "ARCFLARE_BUS_FILE", "ARCFLARE_SERVICEBUS_NAMESPACE", "ARCFLARE_FEDERATION",
        "ARCFLARE_PARTICIPANT", "ARCFLARE_WORKSPACE"}

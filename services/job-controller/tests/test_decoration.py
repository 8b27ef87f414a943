"""Every job gets the bridge on the server and metric forwarding on the clients, once."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from arcflare.job_controller.decoration import (
    BRIDGE_PATH,
    FED_EVENT_PATH,
    bridge_bus,
    decorate_client_config,
    decorate_job,
    decorate_server_config,
)
from arcflare.runtime.settings import Settings

SERVER = {"format_version": 2, "workflows": [], "components": [{"id": "persistor", "path": "x.Y"}]}


def test_server_config_gains_the_bridge_with_the_agreed_arguments() -> None:
    original = copy.deepcopy(SERVER)

    out = decorate_server_config(SERVER, federation="fed-a",
                                 bus={"bus": "sqlite", "bus_file": "/shared/bus.db"})

    assert SERVER == original  # pure: the input is untouched
    bridge = [c for c in out["components"] if c["path"] == BRIDGE_PATH]
    assert bridge == [{"id": "arcflare_bridge", "path": BRIDGE_PATH,
                       "args": {"federation": "fed-a", "bus": "sqlite",
                                "bus_file": "/shared/bus.db"}}]
    assert out["components"][0] == SERVER["components"][0]


def test_decorating_twice_gives_the_same_config() -> None:
    once = decorate_server_config(SERVER, federation="f")

    assert decorate_server_config(once, federation="f") == once


def test_client_config_gains_metric_forwarding_only_when_missing() -> None:
    bare = {"format_version": 2, "executors": []}

    once = decorate_client_config(bare)

    assert [c["path"] for c in once["components"]] == [FED_EVENT_PATH]
    assert decorate_client_config(once) == once


def test_decorate_job_touches_server_and_client_apps_of_a_classic_job(tmp_path: Path) -> None:
    for app in ("app_server", "app_site"):
        (tmp_path / app / "config").mkdir(parents=True)
    (tmp_path / "meta.json").write_text(json.dumps(
        {"deploy_map": {"app_server": ["server"], "app_site": ["site-1", "site-2"]}}))
    (tmp_path / "app_server/config/config_fed_server.json").write_text(json.dumps(SERVER))
    (tmp_path / "app_site/config/config_fed_client.json").write_text(json.dumps({"executors": []}))

    decorate_job(tmp_path, federation="f")

    server = json.loads((tmp_path / "app_server/config/config_fed_server.json").read_text())
    client = json.loads((tmp_path / "app_site/config/config_fed_client.json").read_text())
    assert BRIDGE_PATH in [c["path"] for c in server["components"]]
    assert FED_EVENT_PATH in [c["path"] for c in client["components"]]


def test_without_the_bridge_the_server_config_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "app" / "config").mkdir(parents=True)
    (tmp_path / "meta.json").write_text(json.dumps({"deploy_map": {"app": ["@ALL"]}}))
    (tmp_path / "app/config/config_fed_server.json").write_text(json.dumps(SERVER))

    decorate_job(tmp_path, federation="f", bridge=False)

    assert json.loads((tmp_path / "app/config/config_fed_server.json").read_text()) == SERVER


def test_the_bridge_reports_to_the_job_controllers_own_bus_and_never_gets_a_secret(
        tmp_path: Path) -> None:
    shared = Settings(data_dir=tmp_path / "jc", bus_file=tmp_path / "shared" / "bus.db")
    azure = Settings(data_dir=tmp_path, bus="azure", servicebus_namespace="ns.servicebus.windows.net",
                     servicebus_connection_string="Endpoint=sb://x/;SharedAccessKey=SECRET")
    keyed = Settings(data_dir=tmp_path, bus="azure",
                     servicebus_connection_string="Endpoint=sb://x/;SharedAccessKey=SECRET")

    assert bridge_bus(shared) == {"bus": "sqlite", "bus_file": str(tmp_path / "shared" / "bus.db")}
    assert bridge_bus(azure) == {"bus": "azure", "servicebus_namespace": "ns.servicebus.windows.net"}
    assert bridge_bus(keyed) == {"bus": "azure"}

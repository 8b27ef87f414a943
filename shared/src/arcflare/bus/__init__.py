"""The bus: a port with two adapters (embedded SQLite broker, Azure Service Bus)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from arcflare.bus.port import Bus

if TYPE_CHECKING:
    from arcflare.runtime.settings import Settings


def connect(settings: Settings) -> Bus:
    """The bus the settings name: the embedded broker in <data_dir>/bus.db by default (or in
    ARCFLARE_BUS_FILE)."""
    if settings.bus == "azure":
        from arcflare.bus.azure import AzureServiceBus

        return AzureServiceBus.from_settings(settings)
    from arcflare.bus.sqlite import SqliteBus
    from arcflare.runtime.files import private_dir, private_files

    path = settings.bus_path()
    private_dir(path.parent)
    bus = SqliteBus(path)
    private_files(path)
    return bus


__all__ = ["Bus", "connect"]

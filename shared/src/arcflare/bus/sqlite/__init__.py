"""The embedded Service Bus–compatible broker: one SQLite file shared by every
process on the machine."""
from arcflare.bus.sqlite.bus import SqliteBus

__all__ = ["SqliteBus"]

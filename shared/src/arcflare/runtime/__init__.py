"""The service runtime: consumer loop, inbox/outbox, retries, health, settings, logging."""
from arcflare.runtime.consumer import Consumer
from arcflare.runtime.errors import Rejected
from arcflare.runtime.logging import configure_logging, get_logger
from arcflare.runtime.service import Service
from arcflare.runtime.settings import Settings
from arcflare.runtime.state import StateStore, UnitOfWork

__all__ = [
    "Consumer", "Rejected", "Service", "Settings", "StateStore", "UnitOfWork",
    "configure_logging", "get_logger",
]

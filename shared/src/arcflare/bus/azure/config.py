"""What the Azure adapter reads from settings, checked at start.

Every option is a field of arcflare.runtime.settings.Settings (so every service reads the
same ARCFLARE_ variables); they are read with getattr and a default, so a bare settings
object with only the two connection fields works too. The rest tune retries and supervision:

| setting (ARCFLARE_...)                    | default     | what                                        |
|-------------------------------------------|-------------|---------------------------------------------|
| SERVICEBUS_CONNECTION_STRING              | -           | SAS or emulator (`UseDevelopmentEmulator`)   |
| SERVICEBUS_NAMESPACE                      | -           | `<ns>.servicebus.windows.net`, Entra ID      |
| SERVICEBUS_RETRY_TOTAL                    | 3           | SDK retries per operation                    |
| SERVICEBUS_RETRY_BACKOFF_S                | 0.8         | seconds, grows per retry                     |
| SERVICEBUS_RETRY_BACKOFF_MAX_S            | 30          | seconds                                      |
| SERVICEBUS_RETRY_MODE                     | exponential | or fixed                                     |
| SERVICEBUS_MAX_LOCK_RENEWAL_S             | 300         | AutoLockRenewer keeps a lock this long       |
| SERVICEBUS_MAX_CONCURRENT_SESSIONS        | 8           | session locks held at once by one process    |
| SERVICEBUS_MAX_LOCK_RENEWERS              | 32          | locks renewed at once (a thread each)        |
| SERVICEBUS_STALL_AFTER_S                  | 120         | watchdog: rebuild a receiver idle this long  |
|                                           |             | while its entity has an older message        |
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class BusConfigurationError(ValueError):
    """Misconfiguration: one sentence naming the ARCFLARE_ setting to fix."""


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    value = str(value).strip()
    return value or None


@dataclass(frozen=True)
class AzureBusOptions:
    connection_string: str | None = None
    namespace: str | None = None
    retry_total: int = 3
    retry_backoff_factor: float = 0.8
    retry_backoff_max: float = 30.0
    retry_mode: str = "exponential"
    max_lock_renewal_s: float = 300.0
    max_concurrent_sessions: int = 8
    stall_after_s: float = 120.0
    #: messages and sessions whose locks are renewed at once (one worker thread each)
    max_lock_renewers: int = 32
    #: the SDK cannot wait zero seconds; a "just look" receive waits this long
    min_receive_wait_s: float = 0.5

    @classmethod
    def from_settings(cls, settings: Any) -> AzureBusOptions:
        def get(name: str, default: Any) -> Any:
            value = getattr(settings, f"servicebus_{name}", None)
            return default if value is None else value

        options = cls(
            connection_string=_secret(getattr(settings, "servicebus_connection_string", None)),
            namespace=_secret(getattr(settings, "servicebus_namespace", None)),
            retry_total=int(get("retry_total", cls.retry_total)),
            retry_backoff_factor=float(get("retry_backoff_s", cls.retry_backoff_factor)),
            retry_backoff_max=float(get("retry_backoff_max_s", cls.retry_backoff_max)),
            retry_mode=str(get("retry_mode", cls.retry_mode)),
            max_lock_renewal_s=float(get("max_lock_renewal_s", cls.max_lock_renewal_s)),
            max_concurrent_sessions=int(get("max_concurrent_sessions", cls.max_concurrent_sessions)),
            stall_after_s=float(get("stall_after_s", cls.stall_after_s)),
            max_lock_renewers=int(get("max_lock_renewers", cls.max_lock_renewers)),
        )
        options.validate()
        return options

    def validate(self) -> None:
        if not self.connection_string and not self.namespace:
            raise BusConfigurationError(
                "ARCFLARE_BUS=azure needs ARCFLARE_SERVICEBUS_CONNECTION_STRING or "
                "ARCFLARE_SERVICEBUS_NAMESPACE (e.g. myns.servicebus.windows.net); neither is set."
            )
        if self.connection_string:
            self._check_connection_string(self.connection_string)
        elif "://" in self.namespace or "." not in self.namespace:
            raise BusConfigurationError(
                f"ARCFLARE_SERVICEBUS_NAMESPACE must be a fully qualified host name such as "
                f"myns.servicebus.windows.net, not {self.namespace!r}."
            )
        if self.retry_mode not in ("exponential", "fixed"):
            raise BusConfigurationError(
                f"ARCFLARE_SERVICEBUS_RETRY_MODE must be 'exponential' or 'fixed', "
                f"not {self.retry_mode!r}."
            )
        if self.retry_total < 0 or self.max_concurrent_sessions < 1:
            raise BusConfigurationError(
                "ARCFLARE_SERVICEBUS_RETRY_TOTAL must be >= 0 and "
                "ARCFLARE_SERVICEBUS_MAX_CONCURRENT_SESSIONS >= 1."
            )

    @staticmethod
    def _check_connection_string(value: str) -> None:
        parts = dict(p.split("=", 1) for p in value.strip().rstrip(";").split(";") if "=" in p)
        keys = {k.lower() for k in parts}
        if "endpoint" not in keys or not parts.get(
            next(k for k in parts if k.lower() == "endpoint"), ""
        ).startswith("sb://"):
            raise BusConfigurationError(
                "ARCFLARE_SERVICEBUS_CONNECTION_STRING must start with Endpoint=sb://<host>; "
                "copy it from the namespace's Shared access policies (or use the emulator's)."
            )
        if not ({"sharedaccesskeyname", "sharedaccesskey"} <= keys
                or "sharedaccesssignature" in keys):
            raise BusConfigurationError(
                "ARCFLARE_SERVICEBUS_CONNECTION_STRING needs SharedAccessKeyName and "
                "SharedAccessKey (or SharedAccessSignature)."
            )

    @property
    def uses_emulator(self) -> bool:
        return bool(self.connection_string) and "usedevelopmentemulator=true" in (
            self.connection_string.replace(" ", "").lower()
        )

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "retry_total": self.retry_total,
            "retry_backoff_factor": self.retry_backoff_factor,
            "retry_backoff_max": self.retry_backoff_max,
            "retry_mode": self.retry_mode,
        }

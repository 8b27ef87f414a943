"""Site commands: log tails and client restarts, answered on telemetry / events."""
from __future__ import annotations

from arcflare.contracts.commands import RestartSiteClient, TailSiteLogs
from arcflare.contracts.events import SiteClientRestarted, SiteLogTail
from arcflare.runtime import Rejected, UnitOfWork, get_logger
from arcflare.site_agent.health import HealthModel
from arcflare.site_agent.observer import CannotRestart, LogUnavailable, SiteObserver
from arcflare.site_agent.redaction import Redactor
from arcflare.site_agent.settings import SiteAgentSettings
from arcflare.site_agent.tails import RateLimit, make_safe

log = get_logger(__name__)


def _check_federation(cmd: TailSiteLogs | RestartSiteClient, settings: SiteAgentSettings) -> None:
    """The subscription filters on federation and site, so only a message whose routing
    properties contradict its payload gets here: never act on another federation's site."""
    if cmd.federation != settings.federation or cmd.site != settings.site:
        raise Rejected(
            "invalid", f"this agent serves site {settings.site} of federation "
            f"{settings.federation}; the command names {cmd.site} of {cmd.federation}")


def tail_site_logs(cmd: TailSiteLogs, *, uow: UnitOfWork, settings: SiteAgentSettings,
                   site_observer: SiteObserver, redactor: Redactor,
                   tail_rate: RateLimit) -> None:
    _check_federation(cmd, settings)
    if cmd.file not in settings.log_files:
        allowed = ", ".join(settings.log_files)
        raise Rejected("invalid", f"file must be one of {allowed}",
                       errors=[{"field": "file", "problem": f"must be one of {allowed}"}])
    wait = tail_rate.try_acquire()
    if wait:
        raise Rejected("conflict", (
            f"at most {settings.tail_rate_per_minute} log tails per minute leave this site; "
            f"try again in {wait:.0f} s"))
    try:
        raw = site_observer.tail(cmd.file, cmd.lines)
    except LogUnavailable as exc:
        raise Rejected("not_found", str(exc)) from None
    safe = make_safe(raw.lines, redactor, truncated=raw.truncated)
    uow.publish(SiteLogTail(
        federation=cmd.federation, site=cmd.site, file=cmd.file, lines=safe.lines,
        truncated=safe.truncated, redacted_count=safe.redacted_count,
        request_id=uow.envelope.message_id if uow.envelope else None))


def restart_site_client(cmd: RestartSiteClient, *, uow: UnitOfWork,
                        settings: SiteAgentSettings, site_observer: SiteObserver,
                        health_model: HealthModel) -> None:
    _check_federation(cmd, settings)
    if not settings.allow_restart:
        raise Rejected("Forbidden", (
            f"restarts are turned off on site {settings.site}: the site's IT sets "
            "ARCFLARE_ALLOW_RESTART=true to allow them"))
    health_model.expect_restart()
    try:
        handle = site_observer.restart()
    except CannotRestart as exc:
        raise Rejected("not_found", str(exc)) from None
    log.info("site client restarted", handle=handle)
    uow.publish(SiteClientRestarted(federation=cmd.federation, site=cmd.site, handle=handle))


COMMAND_HANDLERS = {TailSiteLogs: tail_site_logs, RestartSiteClient: restart_site_client}

"""Where alerts go: the log, or a webhook with a Teams-, Slack- or plain-JSON payload.

Deliveries are at least once (a POST whose answer is lost is sent again), so each
carries the alert id as its idempotency key: in the `Idempotency-Key` header and in
the body, where a receiver that deduplicates can find it.
"""
from __future__ import annotations

import os
from typing import Any

import httpx
from arcflare.alerter.escaping import slack_text, teams_text
from arcflare.alerter.rules import Sink
from arcflare.runtime import get_logger

log = get_logger("arcflare.alerter")
COLOURS = {"info": "Accent", "warning": "Warning", "critical": "Attention"}
ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: whatever stops a POST before an answer: a URL httpx cannot parse (InvalidURL, or
#: ValueError from IDNA for a bad host name), any transport error, a socket error
UNDELIVERABLE = (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError)


class DeliveryError(Exception):
    """A sink could not take the alert this time (it is retried)."""


def title(alert: dict[str, Any]) -> str:
    """Severity and rule name: both from the rules file (names are [a-z0-9_.-]), never
    from a message, so they need no escaping; everything else shown does."""
    return f"[{alert['severity'].upper()}] {alert['rule']}"


def facts(alert: dict[str, Any]) -> list[tuple[str, str]]:
    found = [("federation", alert.get("federation")), ("site", alert.get("site")),
             ("source", f"{alert['source_type']} {alert['source_message_id']}"),
             ("raised at", alert["raised_at"]), ("alert id", alert["alert_id"])]
    return [(k, str(v)) for k, v in found if v]


def teams_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """A message with an Adaptive Card: what Teams Workflows webhooks accept.
    The title's element id is the alert id (its idempotency key)."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "id": alert["alert_id"], "text": title(alert),
             "weight": "Bolder", "size": "Medium", "color": COLOURS[alert["severity"]],
             "wrap": True},
            {"type": "TextBlock", "text": teams_text(alert["summary"]), "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": teams_text(v)}
                                          for k, v in facts(alert)]},
        ],
    }
    return {
        "type": "message",
        "summary": title(alert),
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                         "contentUrl": None, "content": card}],
    }


def slack_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """Slack incoming-webhook JSON: `text` (fallback and notifications) plus blocks.
    The section's block_id is the alert id (its idempotency key); `verbatim` keeps
    Slack from turning bare URLs and names in the text into links or mentions."""
    summary = slack_text(alert["summary"])
    context = " · ".join(f"{k}: {slack_text(v)}" for k, v in facts(alert))
    return {
        "text": f"{title(alert)}: {summary}",
        "unfurl_links": False,
        "unfurl_media": False,
        "blocks": [
            {"type": "section", "block_id": alert["alert_id"], "text": {
                "type": "mrkdwn", "verbatim": True,
                "text": f"{ICONS[alert['severity']]} *{title(alert)}*\n{summary}"}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "verbatim": True, "text": context}]},
        ],
    }


def payload_for(sink: Sink, alert: dict[str, Any]) -> dict[str, Any]:
    if sink.format == "teams":
        return teams_payload(alert)
    if sink.format == "slack":
        return slack_payload(alert)
    return {**alert, "idempotency_key": alert["alert_id"]}


def webhook_url(sink: Sink) -> str:
    url = sink.url or os.environ.get(sink.url_env or "", "")
    if not url:
        raise DeliveryError(f"sink {sink.name}: environment variable {sink.url_env} is not set")
    return url


def deliver(sink: Sink, alert: dict[str, Any], http: httpx.Client) -> None:
    """Send one alert; raises DeliveryError when the sink did not take it."""
    if sink.kind == "log":
        level = {"info": log.info, "warning": log.warning, "critical": log.error}
        level[alert["severity"]]("ALERT " + alert["summary"], rule=alert["rule"],
                                 federation=alert.get("federation"), site=alert.get("site"),
                                 alert_id=alert["alert_id"])
        return
    try:
        answer = http.post(webhook_url(sink), json=payload_for(sink, alert),
                           headers={IDEMPOTENCY_HEADER: alert["alert_id"]},
                           timeout=sink.timeout_s)
    except httpx.TimeoutException:
        raise DeliveryError(f"timed out after {sink.timeout_s} s") from None
    except UNDELIVERABLE as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    if answer.status_code >= 300:
        raise DeliveryError(f"HTTP {answer.status_code}: {answer.text[:200]}")

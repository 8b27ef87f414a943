"""Where alerts go: the log, or a webhook with a Teams-, Slack- or plain-JSON payload."""
from __future__ import annotations

import os
from typing import Any

import httpx
from arcflare.alerter.rules import Sink
from arcflare.runtime import get_logger

log = get_logger("arcflare.alerter")
COLOURS = {"info": "Accent", "warning": "Warning", "critical": "Attention"}
ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


class DeliveryError(Exception):
    """A sink could not take the alert this time (it is retried)."""


def title(alert: dict[str, Any]) -> str:
    return f"[{alert['severity'].upper()}] {alert['rule']}"


def facts(alert: dict[str, Any]) -> list[tuple[str, str]]:
    found = [("federation", alert.get("federation")), ("site", alert.get("site")),
             ("source", f"{alert['source_type']} {alert['source_message_id']}"),
             ("raised at", alert["raised_at"]), ("alert id", alert["alert_id"])]
    return [(k, str(v)) for k, v in found if v]


def teams_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """A message with an Adaptive Card: what Teams Workflows webhooks accept."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": title(alert), "weight": "Bolder", "size": "Medium",
             "color": COLOURS[alert["severity"]], "wrap": True},
            {"type": "TextBlock", "text": alert["summary"], "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts(alert)]},
        ],
    }
    return {
        "type": "message",
        "summary": title(alert),
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                         "contentUrl": None, "content": card}],
    }


def slack_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """Slack incoming-webhook JSON: `text` (fallback and notifications) plus blocks."""
    context = " · ".join(f"{k}: {v}" for k, v in facts(alert))
    return {
        "text": f"{title(alert)}: {alert['summary']}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text":
                f"{ICONS[alert['severity']]} *{title(alert)}*\n{alert['summary']}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def payload_for(sink: Sink, alert: dict[str, Any]) -> dict[str, Any]:
    if sink.format == "teams":
        return teams_payload(alert)
    if sink.format == "slack":
        return slack_payload(alert)
    return dict(alert)


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
                           timeout=sink.timeout_s)
    except httpx.TimeoutException:
        raise DeliveryError(f"timed out after {sink.timeout_s} s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    if answer.status_code >= 300:
        raise DeliveryError(f"HTTP {answer.status_code}: {answer.text[:200]}")

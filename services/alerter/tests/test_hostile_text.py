"""Words an event's sender chose reach Slack, Teams and the terminal as text, not markup."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.alerter.escaping import slack_text, teams_text
from arcflare.bus import connect
from arcflare.cli import common
from arcflare.cli.main import app
from arcflare.contracts import events as e
from arcflare.ledger.bootstrap import PORT_FILE
from arcflare.ledger.bootstrap import bootstrap as ledger_bootstrap
from arcflare.ledger.http_api import LedgerApi
from arcflare.ledger.settings import LedgerSettings
from typer.testing import CliRunner
from webhook_support import book_for, delivery, raise_one, worker_for

from tests.support.signing import publish, signer_for

MENTION = "<!channel>"
LINK = "<https://evil.example/login|reset your password>"
MARKDOWN_LINK = "[reset your password](https://evil.example/login)"
RICH = "[red]x[/red]"
#: as a DeploymentFailed reason, so it lands in the alert's summary
HOSTILE = f"{MENTION} *bold* _urgent_ ~gone~ `rm -rf /` {RICH} {LINK} {MARKDOWN_LINK} & co"
#: as the target, so it lands in the alert's site (a fact of the card)
HOSTILE_SITE = "<!here> *site*"


def delivered(state, receiver, at, clock, fmt: str) -> tuple[str, dict]:
    book = book_for(receiver.url, fmt)
    alert_id = raise_one(state, book, at, HOSTILE_SITE, reason=HOSTILE)
    worker = worker_for(book, state, clock)
    try:
        worker.deliver_due()
    finally:
        worker.close()
    assert delivery(state, alert_id)["status"] == "delivered"
    return alert_id, receiver.requests[0]


def test_slack_gets_no_mention_link_or_formatting(state, receiver, at, clock) -> None:
    _, body = delivered(state, receiver, at, clock, "slack")

    texts = [body["text"], body["blocks"][0]["text"]["text"],
             body["blocks"][1]["elements"][0]["text"]]
    for text in texts:
        assert not {"<", ">", "`", "~"} & set(text)
        assert "*bold*" not in text and "_urgent_" not in text and "*site*" not in text
    assert "&lt;!channel&gt;" in texts[0] and "&lt;!here&gt;" in texts[2]
    assert "&lt;https://evil.example/login|reset your password&gt;" in texts[1]
    assert "&amp; co" in texts[1]
    assert body["blocks"][0]["text"]["verbatim"] is True  # bare URLs stay text


def test_teams_gets_no_link_or_formatting(state, receiver, at, clock) -> None:
    _, body = delivered(state, receiver, at, clock, "teams")

    card = body["attachments"][0]["content"]
    summary = card["body"][1]["text"]
    site = {f["title"]: f["value"] for f in card["body"][2]["facts"]}["site"]
    assert summary == teams_text(f"deploying {HOSTILE_SITE} failed: {HOSTILE}")
    assert r"\[reset your password\]\(https://evil.example/login\)" in summary
    assert r"\*bold\* \_urgent\_ \~gone\~ \`rm -rf /\`" in summary
    assert r"\<\!channel\>" in summary
    assert site == r"\<\!here\> \*site\*"


def test_plain_json_carries_the_text_as_it_was(state, receiver, at, clock) -> None:
    _, body = delivered(state, receiver, at, clock, "json")

    assert body["summary"] == f"deploying {HOSTILE_SITE} failed: {HOSTILE}"
    assert body["site"] == HOSTILE_SITE


@pytest.mark.parametrize(("text", "slack", "teams"), [
    ("retries_exhausted in config_fed_server.json", "retries_exhausted in config_fed_server.json",
     "retries_exhausted in config_fed_server.json"),
    ("_x_ __init__", "ˍxˍ ˍˍinitˍˍ", r"\_x\_ \_\_init\_\_"),
    ("- listed\n1. numbered", "- listed\n1. numbered", "\\- listed\n1\\. numbered"),
    ("> quoted & <b>", "&gt; quoted &amp; &lt;b&gt;", r"\> quoted & \<b\>"),
])
def test_escaping_keeps_ordinary_words_and_neutralises_markup(text, slack, teams) -> None:
    assert (slack_text(text), teams_text(text)) == (slack, teams)


@pytest.fixture
def ledger_data_dir(tmp_path: Path) -> Iterator[Path]:
    """The real ledger's projection of one hostile AlertRaised, served by its HTTP API."""
    settings = LedgerSettings(data_dir=tmp_path / "data")
    raised = e.AlertRaised(
        rule="[bold]deployment-failed[/bold]", severity="critical", summary=HOSTILE,
        federation="hospitals", site=RICH, source_type="DeploymentFailed",
        source_message_id="m-1")
    with connect(settings) as bus:
        publish(bus, signer_for(settings.data_dir, "service:alerter"), raised)
    ledger = ledger_bootstrap(settings)
    ledger.drain(timeout=30)
    api = LedgerApi(ledger.state.path, "127.0.0.1", 0, settings.run_dir() / PORT_FILE)
    try:
        yield settings.data_dir
    finally:
        api.close()
        ledger.stop()


def test_the_cli_prints_alert_text_literally(ledger_data_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(common.out, "width", 400)  # one line per row

    result = CliRunner().invoke(app, ["alerts", "--data-dir", str(ledger_data_dir)],
                                env={"ARCFLARE_LEDGER_URL": ""})

    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "critical" in line)
    assert "[bold]deployment-failed[/bold]" in row
    assert row.count(RICH) == 2  # in the summary and as the site
    assert HOSTILE in row

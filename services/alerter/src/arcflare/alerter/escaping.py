"""Text from messages (summaries, site names, reasons) shown as text, never as markup.

Anyone who can make a service publish an event chooses some of its words, so an
alert must not let them mention @channel, plant a link or restyle the message.
"""
from __future__ import annotations

import re

#: Slack's control characters, written as the entities Slack documents for them
SLACK_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: Slack has no escape for its formatting characters: a look-alike shows the same
#: and formats nothing (∗ asterisk operator, ˍ modifier low macron, ∼ tilde
#: operator, ˋ modifier grave accent)
SLACK_LOOKALIKES = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
#: `_` inside a word (retries_exhausted, config_fed_server.json) formats nothing in
#: either markdown, so it is left alone; at a word's edge it may open or close italics
_EDGE_UNDERSCORE = r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"
_SLACK = re.compile(rf"[&<>*~`]|{_EDGE_UNDERSCORE}")
#: what the Markdown of Teams cards acts on: emphasis, links, code, headings, tables, html
_TEAMS = re.compile(rf"[\\*~`\[\]()<>#|!]|{_EDGE_UNDERSCORE}")
#: a list item or numbered item at the start of a line
_TEAMS_LINE_START = re.compile(r"^(\s*\d*)([-+.])(?=\s|$)", re.MULTILINE)


def slack_text(text: str) -> str:
    """For a Slack mrkdwn text object or the message's `text`."""
    return _SLACK.sub(lambda m: SLACK_ENTITIES.get(m[0]) or SLACK_LOOKALIKES[m[0]], text)


def teams_text(text: str) -> str:
    """For a TextBlock or a fact of an Adaptive Card (Markdown, backslash escapes)."""
    escaped = _TEAMS.sub(lambda m: "\\" + m[0], text)
    return _TEAMS_LINE_START.sub(lambda m: m[1] + "\\" + m[2], escaped)

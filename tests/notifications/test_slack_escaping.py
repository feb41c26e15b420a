"""Slack text escaping: a hostile id or name never becomes a mention or a link in Slack."""

from __future__ import annotations

import json

from tests.notifications.builders import T0, charge
from tests.notifications.harness import deliver_all, run
from tests.support import customer, envelope
from worker.notifications.slack import plain_message, slack_escape

HOSTILE_ID = "ch_<!channel>|<https://evil.example|x>&"


def _hostile_duplicate_charge() -> list[str]:
    """A duplicate charge whose later charge id and customer name carry Slack control text."""
    name = "<!here> <@U123> Mallory"
    return [
        envelope("evt_m", "customer.created", customer("cus_1", "m@example.com", created=T0,
                 name=name), T0),
        envelope("evt_ch1", "charge.succeeded", charge("ch_1", created=T0 + 60), T0 + 60),
        envelope("evt_ch2", "charge.succeeded", charge(HOSTILE_ID, created=T0 + 180), T0 + 180),
    ]  # fmt: skip


def test_hostile_ids_and_names_are_escaped_in_every_slack_text(engine, channels, policy, slack):
    """No ``<!…>``, ``<@…>`` or foreign link reaches Slack; our own case link still does."""
    deliver_all(engine, run(engine, _hostile_duplicate_charge(), policy), channels)
    [request] = [r for r, _ in slack.log]
    payload = json.loads(request.get_data())
    texts = [payload["text"], *_texts(payload["blocks"])]
    joined = "\n".join(texts)
    assert "<!" not in joined and "<@" not in joined and "<https://evil" not in joined
    assert (
        "&lt;!channel&gt;|&lt;https://evil.example|x&gt;&amp;"
        in payload["blocks"][2]["elements"][0]["text"]
    )
    assert "<https://ops.acme.test/cases/1|case #1>" in joined


def test_escape_follows_slacks_three_entities():
    """``&`` first, then ``<`` and ``>``; nothing else is touched."""
    assert slack_escape("a & <b> *c*") == "a &amp; &lt;b&gt; *c*"


def test_digest_text_is_escaped():
    """The digest's code block cannot close itself into a mention."""
    message = plain_message("cases\n<!channel> ``` <!everyone>")
    assert "<!" not in message.text and "<!" not in json.dumps(message.as_json())


def _texts(blocks: list[dict]) -> list[str]:
    found: list[str] = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found.extend(element["text"] for element in block.get("elements", []))
    return found

"""Finding 6: an annotator cannot decide an item another annotator holds; the claim lapses."""

from __future__ import annotations

import sqlite3

import pytest
from running_app import ANNOTATOR, PASSWORD, app_config, call, cli, initial_inputs, start_app

OTHER = "ann2"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("claims-data")
    running = start_app(data)
    for name in (ANNOTATOR, OTHER):
        cli(data, "user", "add", name, "--role", "annotator", "--password-env", "RR_PW", env={"RR_PW": PASSWORD})
    yield running
    running.stop()


def _fn(config: dict, api_name: str) -> dict:
    return next(d for d in config["dependencies"] if d.get("api_name") == api_name)


def test_foreign_claims_are_refused_until_they_lapse(app):
    holder, intruder = app.annotator(), app.client(OTHER, PASSWORD)
    config = app_config(holder)
    nxt, open_item = _fn(config, "next_item"), _fn(config, "open_item")
    shown = call(holder, nxt["id"], initial_inputs(config, nxt))
    item_id, version = shown["output"]["data"][:2]
    assert item_id is not None
    # the intruder reads the id and version (open_item) and tries every decision on it
    opened = call(intruder, open_item["id"], [item_id])
    assert opened["output"]["data"][:2] == [item_id, version]
    for decision in ("accept", "skip", "reject", "fix"):
        done = call(intruder, _fn(config, decision)["id"], [item_id, version, "", "", "spam", None])
        message = done["output"]["data"][0]
        assert "Not saved" in message and f"claimed by {ANNOTATOR}" in message, message
    # nothing moved: the holder saves on the version they were given
    saved = call(holder, _fn(config, "accept")["id"], [item_id, version, "", "", "", None])
    assert "Saved accept" in saved["output"]["data"][0], saved


def test_a_lapsed_claim_holds_no_one_back(app):
    holder, other = app.annotator(), app.client(OTHER, PASSWORD)
    config = app_config(holder)
    nxt = _fn(config, "next_item")
    item_id, version = call(holder, nxt["id"], initial_inputs(config, nxt))["output"]["data"][:2]
    with sqlite3.connect(app.data / "reasonrank.db") as conn:  # the holder walked away 31 minutes ago
        conn.execute("UPDATE item SET claimed_until = '2000-01-01 00:00:00.000000' WHERE id = ?", (item_id,))
    done = call(other, _fn(config, "skip")["id"], [item_id, version, "", "", "", None])
    assert "Saved skip" in done["output"]["data"][0], done

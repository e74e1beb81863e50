"""Fixtures shared by the attack modules (a conftest, so that a session-scoped app is one app)."""

from __future__ import annotations

import pytest
from running_app import ANNOTATOR, PASSWORD, cli, start_app


@pytest.fixture(scope="session")
def app_with_annotator(tmp_path_factory):
    """One app for the attack modules that only need it fresh with the admin and one annotator
    (each app start costs seconds): they change nothing another module reads."""
    data = tmp_path_factory.mktemp("shared-sec-data")
    running = start_app(data)
    cli(data, "user", "add", ANNOTATOR, "--role", "annotator", "--password-env", "RR_PW", env={"RR_PW": PASSWORD})
    yield running
    running.stop()

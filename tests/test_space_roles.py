"""The Space's role rule as one pure function, and the User rows it keeps in step."""

from __future__ import annotations

import pytest
from db_fixtures import sqlite_engine, sqlite_template  # noqa: F401

from db.space_users import apply_roles, ensure_user
from db.users import get_user, verify
from ui.space_roles import space_role


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("someone", "annotator"),
        ("Owner", "admin"),  # HF names compare without regard to case
        ("ann", "admin"),
        ("carl", "admin"),
        ("annie", "annotator"),  # a listed name, not a prefix
    ],
)
def test_space_role(name, expected):
    assert space_role(name, "owner", " ann, ,Carl ") == expected


def test_without_owner_or_list_everyone_signed_in_is_an_annotator():
    assert space_role("owner", None, None) == "annotator"
    assert space_role("x", "", "") == "annotator"


@pytest.fixture
def engine(sqlite_engine):  # noqa: F811
    return sqlite_engine


def test_users_follow_the_rule_and_cannot_log_in_with_a_password(engine):
    assert ensure_user(engine, "hf-new", "annotator").role == "annotator"
    assert ensure_user(engine, "hf-new", "admin").role == "admin"
    assert get_user(engine, "hf-new").is_admin
    assert verify(engine, "hf-new", "") is None and verify(engine, "hf-new", "hf-new") is None
    changed = apply_roles(engine, lambda name: space_role(name, "alice", ""))
    assert {user.name for user in changed} >= {"alice", "hf-new"}  # promoted; demoted (not listed)
    assert get_user(engine, "alice").is_admin and not get_user(engine, "hf-new").is_admin
    assert apply_roles(engine, lambda name: space_role(name, "alice", "")) == []

"""Who may do what on a Hugging Face Space: the one rule, and keeping the User table in step.

Anonymous visitors: the Arena and the public leaderboard, nothing else (every other handler asks
for a user and refuses without one). Anyone signed in with Hugging Face: annotator (Review).
Admins: the Space's owner ($SPACE_AUTHOR_NAME) and the names in $REASONRANK_ADMINS (a comma
list). HF user names compare without regard to case. The role is written to the User table on
each sign-in (`admit`) and for every known user at start (`apply_at_start`), so the role checks
that run on the server for every call (ui.data.require_admin, …) read the rule's answer.
"""

from __future__ import annotations

import os

from sqlalchemy import Engine

ADMINS_ENV = "REASONRANK_ADMINS"
_ENGINE: list[Engine] = []  # the app's label store once installed on a Space (one per process)


def space_role(name: str | None, owner: str | None, admins: str | None) -> str | None:
    """ "admin", "annotator", or None for an anonymous visitor."""
    if not name or not name.strip():
        return None
    listed = {part.strip().casefold() for part in [owner or "", *(admins or "").split(",")] if part.strip()}
    return "admin" if name.strip().casefold() in listed else "annotator"


def role_from_env(name: str | None) -> str | None:
    return space_role(name, os.environ.get("SPACE_AUTHOR_NAME"), os.environ.get(ADMINS_ENV))


def install(engine: Engine) -> None:
    """Make `admit` keep users of this label store in step (called once at start on a Space)."""
    from db.space_users import apply_roles

    _ENGINE[:] = [engine]
    apply_roles(engine, role_from_env)


def admit(name: str | None) -> str | None:
    """The signed-in HF user's name after writing their role; None stays None (anonymous)."""
    role = role_from_env(name)
    if role is None or not _ENGINE:
        return name
    from db.space_users import ensure_user

    return ensure_user(_ENGINE[0], name.strip(), role).name

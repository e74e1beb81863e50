"""Users who sign in with Hugging Face on a Space: their row in the User table, role kept in step
with the Space's rule (ui/space_roles.py) on every sign-in and at start.

They have no password here (HF authenticates them): the stored hash is of a random secret nobody
knows, so password login can never open such an account.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from db.engine import read_session, write_session
from db.models import ROLES, User
from db.users import UserInfo, list_users
from reasonrank.io import InputError

_HASHER = PasswordHasher()


def ensure_user(engine: Engine, name: str, role: str) -> UserInfo:
    """The user `name` with `role`: created when missing, its role changed when it differs."""
    if role not in ROLES:
        raise InputError(f"role {role!r} is not valid; choose one of {', '.join(ROLES)}")
    with read_session(engine) as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is not None and user.role == role:
            return UserInfo(user.id, user.name, user.role, user.created_at)
    unusable = _HASHER.hash(secrets.token_urlsafe(32)) if user is None else None
    try:
        with write_session(engine) as session:
            user = session.scalar(select(User).where(User.name == name))
            if user is None:
                user = User(name=name, role=role, password_hash=unusable)
                session.add(user)
            user.role = role
            session.flush()
            return UserInfo(user.id, user.name, user.role, user.created_at)
    except IntegrityError:  # a concurrent first sign-in of the same name created it
        return ensure_user(engine, name, role)


def apply_roles(engine: Engine, role_of) -> list[UserInfo]:
    """Set every existing user's role to `role_of(name)` (a name it returns None for is left
    alone); returns the users whose role changed."""
    changed = []
    for user in list_users(engine):
        role = role_of(user.name)
        if role is not None and role != user.role:
            changed.append(ensure_user(engine, user.name, role))
    return changed

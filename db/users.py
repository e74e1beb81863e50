"""People who review: names, roles (admin | annotator) and argon2 password hashes.

Passwords are hashed with argon2id (argon2-cffi's PasswordHasher, a maintained library with
OWASP-level defaults); hashes made under older parameters are upgraded on the next good login.
Functions return plain UserInfo objects so callers never hold a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from db.engine import read_session, write_session
from db.models import ROLES, User
from reasonrank.io import InputError

_HASHER = PasswordHasher()
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    role: str
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _info(user: User) -> UserInfo:
    return UserInfo(id=user.id, name=user.name, role=user.role, created_at=user.created_at)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InputError(f"role {role!r} is not valid; choose one of {', '.join(ROLES)}")


def _exists(engine: Engine, name: str) -> bool:
    with read_session(engine) as session:
        return session.scalar(select(User.id).where(User.name == name)) is not None


def add_user(engine: Engine, name: str, role: str, password: str) -> UserInfo:
    """Create a user; a taken name, an unknown role or an empty password is an InputError."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise InputError(f"user name must be 1..{MAX_NAME_CHARS} characters")
    _check_role(role)
    if not password:
        raise InputError(f"password for user {name!r} must not be empty")
    if _exists(engine, name):  # checked before hashing, which is slow on purpose
        raise InputError(f"user {name!r} already exists")
    password_hash = _HASHER.hash(password)
    try:
        with write_session(engine) as session:
            if session.scalar(select(User.id).where(User.name == name)) is not None:
                raise InputError(f"user {name!r} already exists")
            user = User(name=name, role=role, password_hash=password_hash)
            session.add(user)
            session.flush()
            return _info(user)
    except IntegrityError as exc:  # a concurrent add of the same name won the race
        raise InputError(f"user {name!r} already exists") from exc


def verify(engine: Engine, name: str, password: str) -> UserInfo | None:
    """The user when `password` is theirs, else None (unknown name and wrong password alike)."""
    with read_session(engine) as session:
        user = session.scalar(select(User).where(User.name == name))
    if user is None:
        return None
    try:
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        with write_session(engine) as session:
            stored = session.get(User, user.id)
            stored.password_hash = _HASHER.hash(password)
    return _info(user)


def user_row(session: Session, name: str) -> User:
    """The User row called `name` inside an open session; an unknown name is an InputError."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise InputError(f"no user named {name!r}")
    return user


@dataclass(frozen=True)
class UserRef:
    id: int
    role: str


_USER_REF = select(User.__table__.c.id, User.__table__.c.role).where(User.__table__.c.name == bindparam("name"))


def user_ref(connection: Connection, name: str) -> UserRef:
    """The id and role of the user called `name`, for Core statements in an open transaction; an
    unknown name is an InputError."""
    row = connection.execute(_USER_REF, {"name": name}).first()
    if row is None:
        raise InputError(f"no user named {name!r}")
    return UserRef(row.id, row.role)


def get_user(engine: Engine, name: str) -> UserInfo:
    """The user called `name`; an unknown name is an InputError."""
    with read_session(engine) as session:
        return _info(user_row(session, name))


def list_users(engine: Engine) -> list[UserInfo]:
    with read_session(engine) as session:
        return [_info(user) for user in session.scalars(select(User).order_by(User.name))]


def create_first_admin(engine: Engine, name: str = "admin") -> str | None:
    """On a database with no users, create admin `name` with a random password and return it.

    Returns None when any user exists already (or a concurrent first run won the race), so a
    fresh install is never left without a way in and an existing one is never touched.
    """
    import secrets

    with read_session(engine) as session:
        if session.scalar(select(User.id).limit(1)) is not None:
            return None
    password = secrets.token_urlsafe(18)
    try:
        add_user(engine, name, "admin", password)
    except InputError:
        return None
    return password

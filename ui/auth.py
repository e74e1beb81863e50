"""Who may call what: the logged-in user, the admin check, and the access rule of every handler.

Default deny. Every function the Blocks registers (named API endpoints, private handlers, timer
ticks, page loads: all are reachable by fn index through the queue, so hiding one proves nothing)
is wrapped by `enforce` in a check of its declared access:

- `public`: anyone who reached the app (a login is still required where the app has auth);
- `signed_in`: a named user (Gradio auth, or the HF OAuth user on a Space);
- `admin_only`: a user whose role in the User table is admin.

A handler declares its access with one of the decorators (also usable on a lambda at wiring), or
inherits the access of the `handlers_for` scope it was registered in (ui.build_app gives each tab
one); a handler that declares nothing is admin-only. A refused call runs nothing: events the page
fires by itself (load, timer ticks) get "no change" quietly, any other call a gr.Error.
Gradio is imported at module level (gr.Error, gr.skip); this module is only imported by ui.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, get_type_hints

import gradio as gr
from gradio.context import LocalContext
from sqlalchemy import Engine

from db.users import get_user
from reasonrank.io import InputError

PUBLIC, SIGNED_IN, ADMIN = "public", "signed_in", "admin"
ACCESS = (PUBLIC, SIGNED_IN, ADMIN)
_ATTR = "__rr_access__"
_QUIET_EVENTS = frozenset({"load", "tick"})  # fired by the page itself, for every role
F = TypeVar("F", bound=Callable)


def reviewer(request) -> str:
    """The logged-in user's name: Gradio auth's user, or the HF OAuth user on a Space."""
    name = getattr(request, "username", None) if request is not None else None
    if not name and os.environ.get("SPACE_ID") and request is not None:
        from ui import space_roles

        name = space_roles.admit(_oauth_user(request))  # the Space's role rule, written to User
    if not name:
        raise InputError("not logged in: this needs a signed-in user")
    return name


def _oauth_user(request) -> str | None:
    """The HF user that gr.LoginButton signed in (Gradio keeps it in the Starlette session).

    Only reachable on a Space; the name must still exist in the User table (an admin adds it),
    otherwise the db layer refuses it with a clear "no user named …".
    """
    try:
        info = request.request.session.get("oauth_info") or {}
    except (AttributeError, AssertionError):  # no session middleware: OAuth is not set up
        return None
    return (info.get("userinfo") or {}).get("preferred_username")


def is_admin(engine: Engine | None, request) -> bool:
    """Whether the caller is a signed-in admin (False for anyone else, never an error)."""
    try:
        return engine is not None and get_user(engine, reviewer(request)).is_admin
    except InputError:
        return False


def require_admin(engine: Engine | None, request) -> str:
    """The caller's name when they are an admin; anyone else gets a gr.Error and nothing runs."""
    try:
        name = reviewer(request)
        if engine is None:
            raise InputError("there is no user store")
        user = get_user(engine, name)
    except InputError as exc:
        raise gr.Error(f"admins only: {exc}", print_exception=False) from exc
    if not user.is_admin:
        raise gr.Error(f"admins only: {name} is not an admin", print_exception=False)
    return name


def _declare(access: str) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        setattr(fn, _ATTR, access)
        return fn

    return mark


#: Decorators stating who may call a handler (see the module docstring).
public = _declare(PUBLIC)
signed_in = _declare(SIGNED_IN)
admin_only = _declare(ADMIN)


def declared(fn: Callable | None) -> str | None:
    """The access a handler declared itself, if any."""
    return getattr(fn, _ATTR, None)


@contextmanager
def handlers_for(demo: gr.Blocks, access: str) -> Iterator[None]:
    """Every handler registered inside (that declares nothing itself) is for `access`."""
    if access not in ACCESS:
        raise ValueError(f"access must be one of {ACCESS}")
    before = set(demo.fns)
    yield
    for fn_id in set(demo.fns) - before:
        block_fn = demo.fns[fn_id]
        if getattr(block_fn, "rr_scope", None) is None:
            block_fn.rr_scope = access


def access_of(block_fn) -> str:
    """A registered function's access: its own declaration, else its scope's, else admin."""
    return declared(block_fn.fn) or getattr(block_fn, "rr_scope", None) or ADMIN


def current_request():
    """The gr.Request of the event being handled (None outside one)."""
    return LocalContext.request.get(None)


def _check(access: str, engine: Engine | None) -> None:
    request = current_request()
    if access == ADMIN:
        require_admin(engine, request)
    elif access == SIGNED_IN:
        try:
            reviewer(request)
        except InputError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc


def _refused(block_fn) -> Any:
    """What a refused page-fired event returns: no change to any of its outputs."""
    count = len(block_fn.outputs)
    return None if count == 0 else gr.skip() if count == 1 else tuple(gr.skip() for _ in range(count))


def _guarded(block_fn, access: str, engine: Engine | None) -> Callable:
    fn = block_fn.fn
    quiet = bool(block_fn.targets) and all(event in _QUIET_EVENTS for _, event in block_fn.targets)

    def allowed() -> bool:
        try:
            _check(access, engine)
        except gr.Error:
            if quiet:
                return False
            raise
        return True

    # The wrapper is of the same kind as `fn` (Gradio dispatches on it) and keeps its signature.
    if inspect.isasyncgenfunction(fn):

        async def wrapper(*args, **kwargs):
            if not allowed():
                yield _refused(block_fn)
                return
            async for value in fn(*args, **kwargs):
                yield value

    elif inspect.isgeneratorfunction(fn):

        def wrapper(*args, **kwargs):
            if not allowed():
                yield _refused(block_fn)
                return
            yield from fn(*args, **kwargs)

    elif inspect.iscoroutinefunction(fn):

        async def wrapper(*args, **kwargs):
            if not allowed():
                return _refused(block_fn)
            return await fn(*args, **kwargs)

    else:

        def wrapper(*args, **kwargs):
            if not allowed():
                return _refused(block_fn)
            return fn(*args, **kwargs)

    functools.update_wrapper(wrapper, fn)
    # Gradio reads the handler's signature and type hints on every call (to inject gr.Request and
    # the like), following __wrapped__ and evaluating string annotations each time: ~40 % of a
    # review call's own time. Both are fixed once the handler is wrapped, so work them out now.
    try:
        wrapper.__signature__ = inspect.signature(fn)
    except (TypeError, ValueError):  # a callable without one: Gradio copes the same way
        pass
    if inspect.isfunction(fn):
        try:
            wrapper.__annotations__ = get_type_hints(fn)
        except (NameError, TypeError):
            pass
    setattr(wrapper, _ATTR, access)
    wrapper.rr_guarded = True
    return wrapper


def enforce(demo: gr.Blocks, engine: Engine | None) -> dict[int, str]:
    """Wrap every function of `demo` in the check of its access; returns {fn index: access}."""
    table = {}
    for fn_id, block_fn in demo.fns.items():
        if block_fn.fn is None:  # a js-only event: nothing runs on the server
            continue
        access = access_of(block_fn)
        if not getattr(block_fn.fn, "rr_guarded", False):
            block_fn.fn = _guarded(block_fn, access, engine)
        table[fn_id] = access
    return table


# ----------------------------------------------------------------------------- login throttling
_CLIENT: ContextVar[str | None] = ContextVar("rr_client_address", default=None)


class ClientAddress:
    """ASGI middleware: remembers the connecting address for the login check of this request
    (Gradio calls the auth function with a name and a password only). The socket's peer is
    used, never a forwarded-for header a client could write itself."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        client = scope.get("client") if scope.get("type") == "http" else None
        token = _CLIENT.set(client[0] if client else None)
        try:
            await self.app(scope, receive, send)
        finally:
            _CLIENT.reset(token)


def client_address() -> str | None:
    """The address of the client whose request is being handled (None outside one)."""
    return _CLIENT.get()


class LoginThrottle:
    """Failed logins slow down per user name and per client address.

    After `free` failures within `window_s` (per name; `free_client` per address) each further
    attempt is refused unchecked until 2**(failures - free) seconds (at most `max_wait_s`) have
    passed since the last failure, so guessing costs exponential time while the real user, after
    a few typos, waits seconds. A success clears the name's failures.
    """

    def __init__(self, free: int = 5, free_client: int = 20, window_s: float = 900.0, max_wait_s: float = 300.0):
        self.free, self.free_client, self.window_s, self.max_wait_s = free, free_client, window_s, max_wait_s
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def _blocked(self, key: tuple[str, str], free: int, now: float) -> bool:
        times = self._recent(key, now)
        if len(times) < free:
            return False
        return now - times[-1] < min(2.0 ** (len(times) - free), self.max_wait_s)

    def allowed(self, name: str, client: str | None, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            user_blocked = self._blocked(("user", name), self.free, now)
            return not user_blocked and not (client and self._blocked(("client", client), self.free_client, now))

    def record(self, name: str, client: str | None, ok: bool, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if ok:
                self._failures.pop(("user", name), None)
                return
            for key in (("user", name), ("client", client)) if client else (("user", name),):
                self._failures.setdefault(key, []).append(now)

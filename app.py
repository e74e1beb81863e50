"""Entry point of `make run` and of a Hugging Face Space: build the Blocks and launch.

Host and port come from Gradio's environment variables (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT);
the default is http://127.0.0.1:7860. No model library is imported until a model is used.
The database is $REASONRANK_DB or <data dir>/reasonrank.db; it is migrated (and seeded with the
bundled sample when empty) on start. Login is checked against the User table; on the very first
run an "admin" user is created with a random password, printed once and written (mode 600) to
<data dir>/initial-admin-password.txt. On a Space (SPACE_ID set) HF OAuth is offered instead.
"""

from __future__ import annotations

import asyncio
import os

from db.engine import FIRST_ADMIN_PASSWORD, data_dir, get_engine
from db.seed import ensure_ready
from db.users import create_first_admin, verify
from ui import build_app, launch_options
from ui.auth import LoginThrottle, client_address

engine = get_engine()
ensure_ready(engine)
demo = build_app(engine)


def first_run_admin() -> None:
    """Create the first admin when there is no user at all, and tell the operator its password."""
    password = create_first_admin(engine)
    if password is None:
        return
    path = data_dir() / FIRST_ADMIN_PASSWORD
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"admin\n{password}\n")
    print(f"First run: created user 'admin' with password {password} (also in {path}; delete it after use)")


throttle = LoginThrottle()


async def login(name: str, password: str) -> bool:
    """Gradio's auth check: throttled per name and client (ui.auth.LoginThrottle); the slow
    argon2 check runs off the event loop so a login never stalls other users' requests."""
    client = client_address()
    if not throttle.allowed(name, client):
        return False
    ok = await asyncio.to_thread(verify, engine, name, password) is not None
    throttle.record(name, client, ok)
    return ok


if __name__ == "__main__":
    if os.environ.get("SPACE_ID"):
        from ui import space  # roles from the Space's rule, scheduled snapshots, ZeroGPU functions

        space.start(engine, demo)
        demo.launch(**launch_options())
    else:
        first_run_admin()
        demo.launch(auth=login, **launch_options())

"""Finding 1: nothing of the data directory is served, to anyone; exports go to admins only."""

from __future__ import annotations

import hashlib

import pytest
from running_app import ANNOTATOR, PASSWORD, app_config, call, cli, initial_inputs, start_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("sec-data")
    running = start_app(data)
    cli(data, "user", "add", ANNOTATOR, "--role", "annotator", "--password-env", "RR_PW", env={"RR_PW": PASSWORD})
    job = data / "jobs" / "999"
    job.mkdir(parents=True)
    (job / "log.txt").write_text("secret job log line\n")
    _review_one(data)
    yield running
    running.stop()


def _review_one(data) -> None:
    """One accepted review (through SQLite, from this process), so an export has a row."""
    from db.engine import get_engine
    from db.queue import QueueFilter, next_item
    from db.reviews import save_review

    engine = get_engine(f"sqlite:///{data / 'reasonrank.db'}")
    view = next_item(engine, ANNOTATOR, QueueFilter())
    save_review(engine, view.item_id, ANNOTATOR, "accept", view.version)
    engine.dispose()


SECRETS = ("initial-admin-password.txt", "reasonrank.db", "reasonrank.db-wal", "reasonrank.db-shm", "jobs/999/log.txt")


@pytest.mark.parametrize("who", ["anonymous", "annotator", "admin"])
def test_no_file_of_the_data_dir_is_served(app, who):
    client = {"anonymous": app.client, "annotator": app.annotator, "admin": app.admin}[who]()
    db_sha = hashlib.sha256((app.data / "reasonrank.db").read_bytes()).hexdigest()
    for name in SECRETS:
        target = app.data / name
        assert target.exists(), name
        for path in (str(target), str(target.resolve()), f"{app.data}/./{name}"):
            for route in ("/gradio_api/file=", "/file=", "/gradio_api/file/"):
                reply = client.get(route + path)
                assert reply.status_code in (401, 403, 404), (who, route, name, reply.status_code)
                assert app.admin_password not in reply.text
                assert b"SQLite format 3" not in reply.content
    # the refused requests did not touch the store
    assert hashlib.sha256((app.data / "reasonrank.db").read_bytes()).hexdigest() == db_sha


def test_an_export_reaches_the_admin_as_a_copy_outside_the_data_dir_and_no_annotator(app):
    admin = app.admin()
    config = app_config(admin)
    write = next(d for d in config["dependencies"] if d.get("api_name") == "write_export")
    values = initial_inputs(config, write)
    name_box = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "rr-export-name")
    format_box = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "rr-export-format")
    values[write["inputs"].index(name_box["id"])] = "sec-export"
    values[write["inputs"].index(format_box["id"])] = "rl"  # the sample's labels carry no reasoning
    done = call(admin, write["id"], values)
    assert done["success"], done
    details, file = done["output"]["data"][2], done["output"]["data"][3]
    written = app.data / "exports" / "sec-export.jsonl"
    assert details["written_to"] == str(written.resolve()) or details["written_to"] == str(written)
    assert str(app.data.resolve()) not in file["path"]
    got = admin.get(f"/gradio_api/file={file['path']}")
    assert got.status_code == 200 and got.content == written.read_bytes()
    # the annotator cannot write one, nor read the one written
    annotator = app.annotator()
    refused = call(annotator, write["id"], values)
    assert not refused["success"] and "admins only" in refused["output"]["error"], refused
    assert annotator.get(f"/gradio_api/file={written}").status_code == 403

"""The page config (`/config`) is the same for every visitor, annotators and anonymous Space
visitors included: it must carry no admin data. Job histories, export choices and rerankers
are sent only by admin-only page loads (checked in-process on the built Blocks)."""

from __future__ import annotations

import json

from sqlmodel import Session

MARK = "leak-canary-7f3e"


def test_admin_data_is_not_in_the_page_config(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONRANK_DATA", str(tmp_path))
    from db.engine import get_engine, init_db
    from db.models import Export, Job

    engine = get_engine(f"sqlite:///{tmp_path / 'store.db'}")
    init_db(engine)
    with Session(engine) as session:
        for kind in ("train", "eval", "synth"):
            session.add(Job(kind=kind, status="failed", message=f"{MARK} {kind}", config={"argv": [MARK]}))
        for kind in ("sft", "rl"):
            session.add(Export(name=f"{MARK}-{kind}", kind=kind, count=1, sha256="0" * 64, path=f"/x/{MARK}.jsonl"))
        session.commit()

    from ui import build_app

    config = json.dumps(build_app(engine).get_config_file(), default=str)
    assert MARK not in config

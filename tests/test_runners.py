"""The remote runners' log protocol: events carried as tagged lines in the job's own log."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from reasonrank import jobs
from reasonrank.runners import mirror_log, split_log


def test_split_log_takes_events_out_and_keeps_what_precedes_a_tag():
    tag = jobs.EVENT_TAG
    text = "\n".join(
        [
            "plain",
            f'{tag}{{"event": "progress", "done": 1}}',
            f'\r 40%|####{tag}{{"event": "metrics"}}',
            f' 50%|#####\r{tag}{{"event": "end"}}',
            f"{tag}{{cut",
        ]
    )
    lines, events = split_log(text)
    assert events == [{"event": "progress", "done": 1}, {"event": "metrics"}, {"event": "end"}]
    # a bar the tag line continues stays; one a carriage return cleared does not; a cut event stays readable
    assert lines == ["plain", "\r 40%|####", f"{tag}{{cut"]


def test_mirror_log_appends_only_complete_new_lines_once(tmp_path):
    log, events = tmp_path / "j" / "log.txt", tmp_path / "j" / "events.jsonl"
    first = f'a\n{jobs.EVENT_TAG}{{"event": "metrics", "step": 1}}\nhalf'
    assert mirror_log(first, log, events) == 1
    assert mirror_log(first, log, events) == 0  # the same log again: nothing new
    assert mirror_log(first + f' line\n{jobs.EVENT_TAG}{{"event": "metrics", "step": 2}}\n', log, events) == 1
    assert log.read_text() == "a\nhalf line\n"
    assert [e["step"] for e in jobs.read_events(events)[0]] == [1, 2]


def test_a_command_with_events_to_stdout_writes_tagged_lines(tmp_path):
    env = {**os.environ, jobs.EVENTS_ENV: jobs.EVENTS_TO_STDOUT}
    done = subprocess.run(
        [sys.executable, "-m", "reasonrank", "eval", "--candidates", str(tmp_path / "none.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines, events = split_log(done.stdout)
    assert [e["event"] for e in events] == ["start", "end"]
    assert events[0]["cwd"] == os.getcwd() and events[1]["status"] == "failed"
    assert "file not found" in events[1]["message"]
    assert json.dumps(events[1])  # plain JSON

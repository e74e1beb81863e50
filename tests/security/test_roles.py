"""Finding 4: default deny. Every function of the app (named or not, reachable by fn index through
the queue as gradio_client or a raw POST sends it, or by the direct /run route) is called
anonymously and as an annotator;
everything not meant for that role is refused before it runs. Also: admin tabs are hidden from
annotators and the refusal says what was refused."""

from __future__ import annotations

import pytest
from running_app import app_config, call, call_direct, initial_inputs

ADMIN_TABS = {"agreement", "synth", "data", "train", "eval"}
ANNOTATOR_APIS = {"fix_ranking"}  # gr.api endpoints (no component in a tab) meant for every reviewer


@pytest.fixture(scope="module")
def app(app_with_annotator):
    return app_with_annotator


def _places(config: dict) -> dict[int, set[str]]:
    """Component id → the places it sits in: the tab id of the enclosing tab, 'registry' inside
    the Arena's registry panel."""
    components = {c["id"]: c for c in config["components"]}
    places: dict[int, set[str]] = {}

    def walk(node: dict, inherited: frozenset) -> None:
        props = components.get(node["id"], {}).get("props", {})
        here = set(inherited)
        if components.get(node["id"], {}).get("type") == "tabitem" and props.get("id"):
            here.add(props["id"])
        if props.get("elem_id") == "reg-panel":
            here.add("registry")
        places[node["id"]] = here
        for child in node.get("children", []):
            walk(child, frozenset(here))

    walk(config["layout"], frozenset())
    return places


def _admin_only(dependency: dict, config: dict, places: dict[int, set[str]]) -> bool:
    """What the app's own layout says about a function: admin-only when it touches an admin tab
    or the registry panel; a gr.api endpoint is admin-only unless listed for reviewers."""
    if not dependency["targets"]:
        return dependency["api_name"] not in ANNOTATOR_APIS
    types = {c["id"]: c["type"] for c in config["components"]}
    ids = [*dependency["inputs"], *dependency["outputs"], *(t for t, _ in dependency["targets"] if t is not None)]
    if dependency["outputs"] and all(types.get(i) in ("tabitem", "accordion", "timer") for i in dependency["outputs"]):
        return False  # the page load that shows or hides admin tabs and panels
    return any(places.get(i, set()) & (ADMIN_TABS | {"registry"}) for i in ids)


def _no_data(output: dict) -> bool:
    """Every output is "no change" (what a refused page-fired event returns)."""

    def unchanged(value) -> bool:
        if value is None:
            return True
        props = value.get("props", {}) if isinstance(value, dict) else None
        return (
            isinstance(value, dict)
            and value.get("__type__") == "update"
            and set(value) <= {"__type__", "props"}
            and set(props) <= {"__type__"}
        )

    return all(unchanged(value) for value in output["data"])


def test_every_function_refuses_who_it_is_not_for(app):
    annotator, anonymous = app.annotator(), app.client()
    config = app_config(annotator)
    places = _places(config)
    dependencies = [d for d in config["dependencies"] if d.get("backend_fn", True)]
    assert len(dependencies) > 50
    refused, allowed = [], []
    for dependency in dependencies:
        values = initial_inputs(config, dependency)
        blocked = call(anonymous, dependency["id"], values)
        assert blocked.get("http_status") in (401, 403), (dependency["api_name"], blocked)
        done = call(annotator, dependency["id"], values)
        error = str((done.get("output") or {}).get("error") or "")
        if _admin_only(dependency, config, places):
            quiet = all(event in ("load", "tick") for _, event in dependency["targets"] or [(None, "")])
            if quiet and dependency["targets"]:
                assert done["success"] and _no_data(done["output"]), (dependency["api_name"], done)
            else:
                assert not done["success"] and "admins only" in error, (dependency["api_name"], done)
                assert "import or export" not in error  # says what was refused, not another tab's text
            refused.append(dependency["api_name"])
        else:
            assert "admins only" not in error, (dependency["api_name"], done)
            allowed.append(dependency["api_name"])
    assert {"next_item", "accept", "fix_ranking", "arena_run"} <= set(allowed)
    assert {"train_command", "eval_results", "eval_refresh", "eval_job_view", "synth_job_view"} <= set(refused)
    assert {"import_command", "export_command", "synth_command", "eval_command"} <= set(refused)


def test_the_direct_route_refuses_who_it_is_not_for(app):
    """The same enumeration by raw POST to /run/predict, the route of events outside the queue
    (the Review handlers): queued functions are not reachable there at all, and no admin-only
    function runs for an annotator."""
    annotator, anonymous = app.annotator(), app.client()
    config = app_config(annotator)
    places = _places(config)
    direct = []
    for dependency in [d for d in config["dependencies"] if d.get("backend_fn", True)]:
        values = initial_inputs(config, dependency)
        blocked = call_direct(anonymous, dependency["id"], values)
        assert blocked.get("http_status") in (401, 403), (dependency["api_name"], blocked)
        done = call_direct(annotator, dependency["id"], values)
        if dependency.get("queue") is not False:
            assert done.get("http_status") == 404, (dependency["api_name"], done)
            continue
        direct.append(dependency["api_name"])
        error = str((done.get("output") or {}).get("error") or "")
        if _admin_only(dependency, config, places):
            assert not done["success"] and "admins only" in error, (dependency["api_name"], done)
    assert {"next_item", "accept", "fix", "reject", "skip", "open_item"} <= set(direct)
    next_dependency = next(d for d in config["dependencies"] if d["api_name"] == "next_item")
    served = call_direct(annotator, next_dependency["id"], initial_inputs(config, next_dependency))
    assert served["success"] and served["output"]["data"][0] is not None, served  # an item id


def test_admin_tabs_are_hidden_from_annotators_and_shown_to_admins(app):
    for client, expected in ((app.annotator(), False), (app.admin(), True)):
        config = app_config(client)
        components = {c["id"]: c for c in config["components"]}
        load = next(
            d
            for d in config["dependencies"]
            if d["outputs"]
            and all(components[i]["type"] in ("tabitem", "accordion", "timer") for i in d["outputs"])
            and any(e == "load" for _, e in d["targets"])
        )
        hidden = [components[i] for i in load["outputs"] if components[i]["type"] != "timer"]
        timers = [components[i] for i in load["outputs"] if components[i]["type"] == "timer"]
        assert len(timers) == 3  # the job panels of Synthesize, Train and Eval
        # Review is for anyone signed in: hidden only from anonymous Space visitors
        assert {c["props"]["id"] for c in hidden if c["type"] == "tabitem"} == ADMIN_TABS | {"review"}
        assert {c["props"]["elem_id"] for c in hidden if c["type"] == "accordion"} == {"reg-panel"}
        assert all(c["props"]["visible"] is False for c in hidden)  # hidden until the page knows the role
        done = call(client, load["id"], [])
        shown = done["output"]["data"]
        visible = {c["props"].get("id") or c["props"].get("elem_id"): v.get("visible") for c, v in zip(hidden, shown)}
        assert done["success"] and visible == {name: name == "review" or expected for name in visible}
        assert [v.get("active") for v in shown[len(hidden) :]] == [expected] * len(timers)


def test_the_registry_is_not_in_the_page_config(app):
    """The page config goes to everyone: it must not carry the registry's options."""
    config = app_config(app.annotator())
    table = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "reg-table")
    assert not (table["props"].get("value") or {}).get("data")

"""The phase-3 runner is the one a target's task kind names (mmxfer.train.runners), for the toolkit's kinds and a
plugin's alike: nothing in the run switches on a kind's or a task's name."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mmxfer import catalog
from mmxfer.config import load_profile
from mmxfer.errors import ConfigError
from mmxfer.kinds import kind_of
from mmxfer.kinds.classification import Classification
from mmxfer.train import phases, translation
from mmxfer.train.run import execute, resolve_request, run_config
from mmxfer.train.runners import Phase3Runner, profile_sections, runner_of


def test_every_kind_names_a_registered_runner_and_translation_its_own():
    catalog.load_plugins()
    for name, cls in catalog.KINDS.items():
        assert cls.runner in catalog.RUNNERS, name
    assert {name for name, cls in catalog.KINDS.items() if cls.runner != "finetune"} == {
        "translation"
    }
    assert runner_of(catalog.task("flores200-translate")).run is translation.run_translation
    for target in ("xnli", "pawsx", "xquad", "udpos", "starter-sib200"):
        assert runner_of(catalog.task(target)).run is phases.run_target
    assert profile_sections() == {"translation"}


class _Echo(Classification):
    """A plugin kind: classification data, its own phase-3 recipe."""

    name = "echo_kind"
    runner = "echo"


@pytest.fixture()
def plugin(monkeypatch):
    """A plugin's kind, task and runner, registered for one test (the registries are restored afterwards)."""
    catalog.load_plugins()
    spec = dataclasses.replace(catalog.task("starter-sib200"), name="echo-target", kind="echo_kind")
    calls: list[dict] = []

    def run(run, profile, target, **kwargs):
        calls.append({"target": target, "run": run.path, **kwargs})
        return [{"task": target, "lang": "en", "split": "test", "metric": "accuracy", "score": 0.5}]

    monkeypatch.setitem(catalog.KINDS._items, "echo_kind", _Echo)
    monkeypatch.setitem(catalog.TASKS._items, "echo-target", spec)
    monkeypatch.setitem(
        catalog.RUNNERS._items, "echo", Phase3Runner(run, profile_section="translation")
    )
    return spec, calls


def test_a_plugin_kind_with_its_own_runner_is_run_by_it(plugin, tmp_path, capsys):
    spec, calls = plugin
    assert kind_of(spec).runner == "echo"
    profile = load_profile("starter")
    request = resolve_request(
        profile, None, "echo-target", seed=3, study="plugins", runs_dir=tmp_path
    )
    run = execute(request)
    assert [c["target"] for c in calls] == ["echo-target"] and calls[0]["run"] == run.path
    assert calls[0]["seed"] == 3 and calls[0]["trunk"] == profile.trunk.name
    assert run.is_done() and json.loads((run.path / "DONE").read_text())["n_rows"] == 1
    # the runner's own profile section is part of its runs' config (hence of their run id), as translation's is
    assert (
        run_config(profile, (), "echo-target", 3, "plugins")["profile"]["translation"][
            "decoder_layers"
        ]
        == 2
    )
    assert "translation" not in run_config(profile, (), "starter-sib200", 3, "plugins")["profile"]


def test_the_cost_of_a_runner_without_a_cost_model_is_a_note_not_a_guess(plugin):
    from mmxfer.study import cost, throughput

    profile = load_profile("starter")
    est = cost.Estimator(profile, throughput.device("h100", profile.precision), None, None)
    assert est.target("echo-target", "baseline", 1, "job", None) == []
    assert est.notes == ["echo-target: no cost model for its phase-3 runner 'echo': not costed"]
    # the toolkit's own runners are costed
    assert est.target("starter-sib200", "baseline", 1, "job", None)


def test_a_kind_that_names_no_registered_runner_is_one_clear_error(plugin, monkeypatch):
    spec, _ = plugin
    monkeypatch.setattr(_Echo, "runner", "ecko")
    with pytest.raises(
        ConfigError, match="names the phase-3 runner 'ecko', which is not registered"
    ):
        runner_of(spec)

"""Every HubSource is a checked contract: listed in resources/hub_contracts.json with the same dataset id,
config and pinned revision; loading-script repositories fail with one line that names the way around them."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from importlib import resources

import pytest

from mmxfer.errors import DataError
from mmxfer.tasks.base import HubSource

HEX40 = re.compile(r"^[0-9a-f]{40}$")


def _contracts() -> list[dict]:
    doc = json.loads(
        resources.files("mmxfer")
        .joinpath("resources/hub_contracts.json")
        .read_text(encoding="utf-8")
    )
    return doc["contracts"]


def _module_sources() -> list[tuple[str, HubSource]]:
    """HubSource objects held by the task modules outside the registered specs (e.g. the captions lookup)."""
    import mmxfer.tasks as pkg

    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"mmxfer.tasks.{info.name}")
        found += [
            (f"{info.name}.{name}", v)
            for name, v in vars(module).items()
            if isinstance(v, HubSource)
        ]
    return found


def _matches(contract: dict, src: HubSource) -> bool:
    return (contract["dataset"], contract["config"], contract["revision"]) == (
        src.path,
        src.config,
        src.revision,
    )


def test_every_registered_hub_source_is_a_recorded_contract(catalog):
    contracts = _contracts()
    checked = 0
    for name, spec in catalog.TASKS.items():
        if spec.source is None:
            continue
        mine = [c for c in contracts if name in c["tasks"]]
        assert mine, f"{name}: no contract in resources/hub_contracts.json"
        assert any(_matches(c, spec.source) for c in mine), (
            f"{name}: {spec.source.path} ({spec.source.config}) @ {spec.source.revision} differs from its contract"
        )
        same = next(c for c in mine if _matches(c, spec.source))
        assert same["gated"] == spec.source.gated, name
        # else the hub is asked for it
        assert same["loading_script"] == bool(spec.source.loading_script), name
        checked += 1
    assert checked >= 25
    for where, src in _module_sources():
        assert any(_matches(c, src) for c in contracts), (
            f"{where}: {src.path} is not a recorded contract"
        )


def test_contracts_say_where_and_when_they_were_checked():
    for c in _contracts():
        assert c["revision"] in (None, "refs/convert/parquet") or HEX40.match(c["revision"]), c[
            "dataset"
        ]
        assert c["sources"] and all(u.startswith("https://") for u in c["sources"]), c["dataset"]
        assert re.match(r"^\d{4}-\d{2}-\d{2}$", c["checked"]), c["dataset"]
        assert c["splits"] and c["columns"], c["dataset"]


def test_google_xtreme_is_pinned_to_the_parquet_conversion(catalog):
    from mmxfer.tasks.xtreme import XTREME_REVISION

    xtreme = [s for _, s in catalog.TASKS.items() if s.source and s.source.path == "google/xtreme"]
    assert len(xtreme) == 9 and {s.source.revision for s in xtreme} == {XTREME_REVISION}


def _script_tasks() -> list:
    """Every task whose contract says its hub repository is a loading script."""
    out = []
    for c in _contracts():
        if not c["loading_script"]:
            continue
        for task in c["tasks"]:
            out.append(pytest.param(task, id=task))
    return out


@pytest.mark.parametrize("task", _script_tasks())
def test_loading_script_datasets_fail_in_one_line_naming_an_alternative(catalog, monkeypatch, task):
    from mmxfer import assets

    def never(*a, **k):  # the hub must not even be asked
        raise AssertionError("load_hub_dataset called")

    monkeypatch.setattr(assets, "load_hub_dataset", never)
    monkeypatch.setattr(assets, "is_offline", lambda: False)
    spec = catalog.task(task)
    with pytest.raises(DataError) as err:
        spec.load(spec.splits[0], spec.train_language)
    msg = str(err.value)
    assert "\n" not in msg and re.search("loading[- ]script", msg) and "--data-dir" in msg


def test_script_contracts_cover_the_known_script_repositories():
    assert {t for c in _contracts() if c["loading_script"] for t in c["tasks"]} >= {
        "cosmosqa",
        "vqa",
        "vqa-text",
    }


def test_hub_paths_request_the_pinned_revision_and_karpathy_train_with_restval(
    catalog, monkeypatch
):
    import datasets

    from mmxfer import assets

    calls = []

    def load(path, name=None, *, split=None, revision=None, gated=False, **kw):
        calls.append((path, name, split, revision))
        if path == "yerevann/coco-karpathy":
            return datasets.Dataset.from_dict(
                {
                    "sentences": [["a cat"]],
                    "filepath": ["train2014"],
                    "filename": ["x.jpg"],
                    "cocoid": [1],
                }
            )
        return datasets.Dataset.from_dict(
            {
                "id": ["q"],
                "title": ["t"],
                "context": ["c"],
                "question": ["q?"],
                "answers": [{"text": ["c"], "answer_start": [0]}],
            }
        )

    monkeypatch.setattr(assets, "load_hub_dataset", load)
    monkeypatch.setattr(assets, "is_offline", lambda: False)
    catalog.task("squad").load("validation")
    catalog.task("caption-text").load("train")
    assert calls == [
        ("rajpurkar/squad", "plain_text", "validation", "0a3a8b7b57e8578ec40b2d2bb4c75aca1a6d6ce1"),
        ("yerevann/coco-karpathy", None, "train+restval", None),
    ]


def test_xnli_translate_train_on_the_hub_is_one_clear_error(catalog, monkeypatch):
    from mmxfer import assets

    monkeypatch.setattr(
        assets, "load_hub_dataset", lambda *a, **k: (_ for _ in ()).throw(AssertionError())
    )
    with pytest.raises(DataError, match="XNLI-MT"):
        catalog.task("xnli").load("translate_train", "de")


def test_ls_tasks_verbose_shows_the_revision_and_the_bucc_caveat(capsys):
    from mmxfer.cli import main
    from mmxfer.tasks.xtreme import XTREME_REVISION

    assert main(["ls", "tasks", "--verbose"]) == 0
    out = capsys.readouterr().out
    bucc = next(line for line in out.splitlines() if line.startswith("bucc "))
    assert XTREME_REVISION in bucc and "upper bound, no distractors" in bucc
    cosmos = next(line for line in out.splitlines() if line.startswith("cosmosqa "))
    assert "loading script" in cosmos
    assert main(["ls", "tasks"]) == 0
    assert XTREME_REVISION not in capsys.readouterr().out

"""`mmxfer study`: the plan counts runs and trainings right; a second real run skips finished runs."""

from __future__ import annotations

import pytest
import yaml

from mmxfer.cli import main
from mmxfer.config import load_study
from mmxfer.study import grid, launch
from mmxfer.study.grid import counts, plan


def test_paper_plan_counts(tmp_path):
    study = load_study("paper")
    _, runs = plan(study, tmp_path)
    n_arms, n_targets, n_seeds = len(study.arms), len(study.targets), len(study.seeds)
    trained_arms = sum(1 for a in study.arms if a.intermediate)
    c = counts(runs)
    assert c["runs"] == n_arms * (n_targets + 1) * n_seeds  # +1: the retrieval run per arm and seed
    assert c["phase3_trainings"] == n_arms * n_targets * n_seeds
    assert c["retrieval_evaluations"] == n_arms * n_seeds
    assert c["phase2_trainings"] == trained_arms * n_seeds  # shared across targets, one per seed
    assert len({r.path for r in runs}) == c["runs"]  # every run has its own folder
    # a fixed phase-2 seed shares phase 2 across seeds too
    shared = load_study("paper", ["overrides=[intermediate.seed=7]"])
    assert counts(plan(shared, tmp_path)[1])["phase2_trainings"] == trained_arms


def test_dry_run_prints_counts(tmp_path, capsys):
    assert main(["study", "starter", "--dry-run", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # six arms x (SIB-200 + retrieval) x two seeds; each seed of an arm trains its own phase-2 trunk
    assert "24 runs: 0 finished, 24 to run -> 10 phase-2 trainings" in out
    assert "12 phase-3 trainings, 12 retrieval evaluations" in out
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


def test_real_study_then_rerun_skips_finished(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    path = tmp_path / "mini.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "mini",
                "profile": "starter",
                "arms": [
                    {"name": "baseline", "intermediate": []},
                    {"name": "vqa-text", "intermediate": ["starter-vqa-text"]},
                ],
                "targets": ["starter-names"],
                "seeds": [3],
                "overrides": [
                    "trunk.name=tiny",
                    "trunk.freeze_embeddings=false",
                    "intermediate.max_train_examples=16",
                    "intermediate.batch_size=8",
                    "target.max_train_examples=16",
                    "target.batch_size=8",
                    "target.epochs=1",
                    "target.max_eval_examples=8",
                ],
            }
        )
    )
    runs_dir = tmp_path / "runs"
    assert main(["study", str(path), "--runs-dir", str(runs_dir), "--no-compare"]) == 0
    _, runs = plan(load_study(str(path)), runs_dir)
    assert all(r.done for r in runs) and all(r.phase2_done for r in runs)
    for r in runs:
        cfg = yaml.safe_load((r.path / "config.yaml").read_text())
        assert set(cfg) == {"arm", "target", "seed", "study", "profile"}
        assert (
            cfg["seed"] == 3
            and cfg["target"] == "starter-names"
            and cfg["profile"]["trunk"]["name"] == "tiny"
        )
        assert (r.path / "predictions" / "starter-names" / "test-de.jsonl").is_file()
    vqa = next(r for r in runs if r.arm == "vqa-text")
    log = [yaml.safe_load(x) for x in (vqa.path / "train_log.jsonl").read_text().splitlines()]
    phases_logged = [r["phase"] for r in log]
    assert (
        phases_logged[0] == "phase2:starter-vqa-text"
        and phases_logged[-1] == "phase3:starter-names"
    )
    assert all("loss" in r and "lr" in r for r in log if "eval_metric" not in r)
    assert not (vqa.path / "checkpoints").exists()  # training state is dropped once the run is DONE
    assert yaml.safe_load((vqa.path / "config.yaml").read_text())["arm"] == {
        "name": "vqa-text",
        "intermediate": ["starter-vqa-text"],
        "modality": "text",
    }
    capsys.readouterr()

    def must_not_run(request):
        raise AssertionError(f"finished run started again: {request.label}")

    monkeypatch.setattr(grid, "execute", must_not_run)
    assert main(["study", str(path), "--runs-dir", str(runs_dir), "--no-compare"]) == 0
    assert "2 runs: 2 finished, 0 to run -> 0 phase-2 trainings" in capsys.readouterr().out


def test_unknown_study_is_one_clear_error(capsys):
    assert main(["study", "papr", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "unknown study 'papr'" in err and "paper" in err and "Traceback" not in err


@pytest.mark.parametrize("bad", ["arms=[]"])
def test_study_without_arms_fails_cleanly(bad, capsys):
    assert main(["study", "starter", "--dry-run", "--set", bad]) == 2
    assert "has no arms" in capsys.readouterr().err


def test_slurm_submission_chains_runs_on_shared_phase2(tmp_path, monkeypatch):
    submitted = []

    class Job:
        def __init__(self, n):
            self.job_id = str(1000 + n)

    def fake_submit(argv, slurm, log_dir, *, depends_on=(), name=""):
        submitted.append((argv, list(depends_on), log_dir))
        return Job(len(submitted))

    monkeypatch.setattr(launch, "submit_slurm", fake_submit)
    assert main(["study", "starter", "--launcher", "slurm", "--runs-dir", str(tmp_path)]) == 0
    assert len(submitted) == 24
    by_arm: dict = {}
    for argv, deps, log_dir in submitted:
        arm = argv[argv.index("--arm") + 1]
        by_arm.setdefault(arm, []).append(deps)
        assert "--resume" in argv and log_dir.parent.name == "_slurm"
    assert by_arm["baseline"] == [[], [], [], []]  # no phase 2: nothing to wait for
    for arm in ("vqa", "vqa-text", "caption", "caption-text", "bitext-control"):
        # SIB-200 seeds 1 and 2 each train their seed's phase 2; the retrieval run of each seed waits for it
        sib1, sib2, ret1, ret2 = by_arm[arm]
        assert sib1 == [] and sib2 == [] and len(ret1) == 1 and len(ret2) == 1 and ret1 != ret2
    cmd = launch.accelerate_command(["train"], load_study("starter").slurm)
    assert cmd[:2] == ["accelerate", "launch"] and cmd[-3:] == ["-m", "mmxfer", "train"]


def test_a_finished_runs_reference_cycles_are_freed_before_the_next_run(tmp_path, monkeypatch):
    """A run's model sits in reference cycles; the grid collects them after each run, so runs' trunks are never
    in memory together (the starter study peaked at about 8 GB without it). Automatic collection is off here, so only
    the grid's own collection can free them."""
    import gc
    import weakref

    class Model:
        pass

    earlier: list[weakref.ref] = []
    alive_at_start: list[int] = []

    def run_holding_a_cycle(request):
        alive_at_start.append(sum(ref() is not None for ref in earlier))
        model = Model()
        model.self = model
        earlier.append(weakref.ref(model))

    monkeypatch.setattr(grid, "execute", run_holding_a_cycle)
    gc.collect()
    gc.disable()
    try:
        assert main(["study", "starter", "--runs-dir", str(tmp_path), "--no-compare"]) == 0
    finally:
        gc.enable()
    assert alive_at_start == [0] * 24


def test_a_release_examines_only_what_was_made_since_the_last_one_and_every_cycle_within_a_bound(
    monkeypatch,
):
    """A full collection of a process that imported torch, transformers and datasets took about half of the
    rehearsal's wall time, once per run. The survivors of a release are frozen, so the next one examines only
    newer objects; a cycle of objects that were alive at a release is still freed within FULL_COLLECTION_EVERY."""
    import gc
    import weakref

    from mmxfer import memory

    class Node:
        pass

    old = Node()
    old.self = old  # alive at the next release: frozen by it
    gc.disable()
    try:
        memory.release_memory()
        assert gc.get_freeze_count() > 0
        ref = weakref.ref(old)
        del old  # now garbage, but frozen: a plain release does not examine it
        new = Node()
        new.self = new
        new_ref = weakref.ref(new)
        del new
        monkeypatch.setattr(memory, "_releases", 0)
        memory.release_memory()
        assert new_ref() is None  # made since the last release: freed by the next
        assert ref() is not None
        for _ in range(memory.FULL_COLLECTION_EVERY - 1):
            memory.release_memory()
        # the full collection of every FULL_COLLECTION_EVERY-th release frees it
        assert ref() is None
    finally:
        gc.enable()


def test_untrained_trunk_retrieval_is_computed_once_for_all_seeds(tmp_path, monkeypatch, capsys):
    """The baseline's retrieval runs of seeds 1 and 2 are one computation (no training reads the seed): the second
    seed's run copies the first's predictions and metric rows, says so in DONE, and evaluates nothing itself."""
    from dataclasses import replace

    from mmxfer.runs.store import Run
    from mmxfer.train import phases
    from mmxfer.train.run import execute, seed_twin

    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    path = tmp_path / "mini.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "mini",
                "profile": "starter",
                "suite": "starter",
                "seeds": [1, 2],
                "languages": ["deu_Latn"],
                "arms": [
                    {"name": "baseline", "intermediate": []},
                    {"name": "vqa-text", "intermediate": ["starter-vqa-text"]},
                ],
                "overrides": [
                    "trunk.name=tiny",
                    "trunk.freeze_embeddings=false",
                    "intermediate.max_train_examples=16",
                    "intermediate.batch_size=8",
                    "target.max_train_examples=16",
                    "target.batch_size=8",
                    "target.epochs=1",
                ],
            }
        )
    )
    evaluated = []
    real = phases.run_retrieval

    def counting(run, *args, **kwargs):
        evaluated.append(
            Run(run.path).config()["arm"]["name"] + f"-s{Run(run.path).config()['seed']}"
        )
        return real(run, *args, **kwargs)

    monkeypatch.setattr(phases, "run_retrieval", counting)
    runs_dir = tmp_path / "runs"
    assert main(["study", str(path), "--runs-dir", str(runs_dir), "--no-compare"]) == 0
    assert evaluated == [
        "baseline-s1",
        "vqa-text-s1",
        "vqa-text-s2",
    ]  # each phase-2 trunk is its own computation
    _, runs = plan(load_study(str(path)), runs_dir)
    first, second = (Run(r.path) for r in runs if r.arm == "baseline" and r.target is None)
    assert (
        second.done_info()["reused_from"] == first.path.name
        and "reused_from" not in first.done_info()
    )
    # the copy is sealed like a computed run
    assert second.verified_metrics() == first.verified_metrics()
    files = sorted(p.relative_to(first.path) for p in first.predictions_dir.rglob("*.jsonl"))
    assert files and files == sorted(
        p.relative_to(second.path) for p in second.predictions_dir.rglob("*.jsonl")
    )
    assert all((first.path / f).read_bytes() == (second.path / f).read_bytes() for f in files)
    assert yaml.safe_load((second.path / "config.yaml").read_text())["seed"] == 2
    assert "results of " + first.path.name + " reused" in capsys.readouterr().out
    # only a finished run whose config differs in the seed alone is a twin
    request = next(
        r for r in runs if r.arm == "baseline" and r.target is None and r.seed == 2
    ).request
    assert seed_twin(request)[0].path == first.path
    study = load_study(str(path))
    other = replace(study, overrides=(*study.overrides, "retrieval.k=2"))
    changed = next(
        r for r in plan(other, runs_dir)[1] if r.arm == "baseline" and r.target is None
    ).request
    assert seed_twin(changed) is None
    trained = next(
        r for r in runs if r.arm == "vqa-text" and r.target is None and r.seed == 2
    ).request
    assert seed_twin(trained) is None  # a phase-2 trunk depends on the seed
    # --force computes again; a twin whose files no longer match its DONE is no twin
    execute(replace(request, force=True))
    assert evaluated[-1] == "baseline-s2" and "reused_from" not in second.done_info()
    first.metrics_path.write_text(first.metrics_path.read_text() + "\n")
    assert seed_twin(request) is None

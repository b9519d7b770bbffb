"""Opt-in phase-2 model selection (intermediate.select_best): the trunk handed to phase 3 is the one with
the best English dev score, not the last; a killed and resumed phase 2 keeps the best-so-far."""

from __future__ import annotations

import json

import pytest
import torch
from toy import ToyClassifier, ToyDataset, collate

from mmxfer.cli import main
from mmxfer.config import PhaseConfig, config_hash, load_profile, to_dict
from mmxfer.train import loop, phases
from mmxfer.train.loop import LoopOptions, train_phase

PHASE = PhaseConfig(lr=1e-2, batch_size=8, epochs=3, grad_accum=2, checkpoint_every=3, eval_every=2)
PEAK = 4  # the scripted dev score peaks at step 4 of 12


class Killed(Exception):
    pass


def _toy_run(tmp, resume=False):
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    state = {"step": 0}

    def evaluate(model, accelerator):  # scored by step: a real dev set would peak mid-training too
        state["step"] += PHASE.eval_every
        snapshots[state["step"]] = {
            k: v.clone() for k, v in accelerator.unwrap_model(model).state_dict().items()
        }
        return -abs(state["step"] - PEAK)

    torch.manual_seed(0)
    train = ToyDataset(60, seed=0)
    result = train_phase(
        ToyClassifier(),
        train,
        collate,
        PHASE,
        LoopOptions(workdir=tmp, seed=1, lengths=train.lengths(), evaluate=evaluate, resume=resume),
    )
    return result, snapshots, state


def test_loop_keeps_the_best_dev_weights_not_the_last_and_resume_keeps_them(tmp_path, monkeypatch):
    result, snaps, _ = _toy_run(tmp_path / "a")
    assert result.state.best_step == PEAK and result.state.global_step == 12
    final = result.model.state_dict()
    assert all(torch.equal(final[k], snaps[PEAK][k]) for k in final)
    assert not all(torch.equal(final[k], snaps[12][k]) for k in final)
    assert [p.name for p in (tmp_path / "a" / "best").iterdir()] == ["step-000000004.pt"]

    real_save = loop._save_checkpoint

    def save_then_die(accelerator, folder, state, *args, **kwargs):
        path = real_save(accelerator, folder, state, *args, **kwargs)
        if state.global_step == 6:  # after the best (4) and a worse evaluation (6)
            raise Killed(path)
        return path

    monkeypatch.setattr(loop, "_save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        _toy_run(tmp_path / "b")
    monkeypatch.setattr(loop, "_save_checkpoint", real_save)
    assert (
        tmp_path / "b" / "best" / "step-000000004.pt"
    ).is_file()  # the checkpoint's best survives
    torch.manual_seed(0)
    train = ToyDataset(60, seed=0)
    calls = []

    def evaluate(model, accelerator):
        calls.append(1)
        return -abs(6 + 2 * len(calls) - PEAK)  # resumed at step 6: evaluations at 8, 10, 12

    resumed = train_phase(
        ToyClassifier(),
        train,
        collate,
        PHASE,
        LoopOptions(
            workdir=tmp_path / "b", seed=1, lengths=train.lengths(), evaluate=evaluate, resume=True
        ),
    )
    assert resumed.resumed_from and len(calls) == 3
    assert resumed.state.best_step == PEAK
    state = resumed.model.state_dict()
    assert all(torch.equal(state[k], final[k]) for k in final)


ARGS = [
    "train",
    "--intermediate",
    "vqa-text",
    "--target",
    "starter-names",
    "--seed",
    "3",
    "--set",
    "trunk.name=tiny",
    "--set",
    "intermediate.select_best=true",
    "--set",
    "intermediate.max_train_examples=16",
    "--set",
    "intermediate.batch_size=4",
    "--set",
    "intermediate.epochs=1",
    "--set",
    "intermediate.eval_every=1",
    "--set",
    "intermediate.lr=1e-3",
    "--set",
    "intermediate.checkpoint_every=3",
    "--set",
    "intermediate.max_eval_examples=8",
    "--set",
    "target.max_train_examples=8",
    "--set",
    "target.batch_size=8",
    "--set",
    "target.epochs=1",
    "--set",
    "target.max_eval_examples=4",
]
SCRIPT = [1.0, 5.0, 2.0, 0.0]  # dev scores at steps 1-4: the best is step 2, not the last


@pytest.fixture()
def scripted(monkeypatch, tmp_path):
    """The real phase-2 dev scorer runs; the returned score is scripted so the best step is known."""
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    calls: list[float] = []
    trunks: list[dict[str, torch.Tensor]] = []
    real = phases.phase2_scorer

    def scorer(specs, devs, batch_size, multi):
        evaluate, names = real(specs, devs, batch_size, multi)

        def scripted_eval(model, accelerator):
            real_score = evaluate(model, accelerator)
            assert 0.0 <= real_score <= 100.0  # VQA accuracy on the text twin's dev set
            trunks.append(
                {
                    k: v.clone()
                    for k, v in accelerator.unwrap_model(model).trunk.state_dict().items()
                }
            )
            calls.append(real_score)
            return SCRIPT[len(calls) - 1]

        return scripted_eval, names

    monkeypatch.setattr(phases, "phase2_scorer", scorer)
    return calls, trunks


def _phase2(runs):
    from mmxfer.models.trunk import load_trunk

    (folder,) = (runs / "starter" / "_intermediate").iterdir()
    (run,) = [p for p in (runs / "starter").iterdir() if not p.name.startswith("_")]
    trunk = load_trunk(str(folder / "trunk")).model.state_dict()
    return folder, run, trunk


def test_phase2_hands_the_best_dev_trunk_to_phase3_and_resume_keeps_it(
    tmp_path, monkeypatch, scripted
):
    calls, trunks = scripted
    assert main(ARGS + ["--runs-dir", str(tmp_path / "a")]) == 0
    folder, run, trunk = _phase2(tmp_path / "a")
    assert len(calls) == 4
    sel = json.loads((run / "phase2_selection.json").read_text())
    assert (sel["best_step"], sel["best"], sel["best_epoch"]) == (2, 5.0, 0)
    assert sel["metrics"] == ["starter-vqa-text:vqa_accuracy.accuracy"]
    assert json.loads((run / "DONE").read_text())["phase2_selection"]["best_step"] == 2
    assert json.loads((folder / "DONE").read_text())["selection"]["best_step"] == 2
    assert all(torch.equal(trunk[k], trunks[1][k]) for k in trunks[1])  # step 2's trunk...
    assert not all(torch.equal(trunk[k], trunks[3][k]) for k in trunks[3])  # ...not the last one
    best_trunk = trunk

    calls.clear()
    real_save = loop._save_checkpoint

    def save_then_die(accelerator, ckpt, state, *args, **kwargs):
        path = real_save(accelerator, ckpt, state, *args, **kwargs)
        if state.global_step == 3:
            raise Killed(path)
        return path

    monkeypatch.setattr(loop, "_save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        main(ARGS + ["--runs-dir", str(tmp_path / "b")])
    monkeypatch.setattr(loop, "_save_checkpoint", real_save)
    assert len(calls) == 3
    assert main(ARGS + ["--runs-dir", str(tmp_path / "b"), "--resume"]) == 0
    assert len(calls) == 4  # only step 4 was evaluated after resuming
    folder, run, trunk = _phase2(tmp_path / "b")
    assert json.loads((run / "phase2_selection.json").read_text())["best_step"] == 2
    assert all(torch.equal(trunk[k], best_trunk[k]) for k in best_trunk)


def test_select_best_is_part_of_the_run_id():
    # every field is in the config dict now (v0.1.0 keeps no hashes of older formats), its default included
    assert to_dict(PhaseConfig())["select_best"] is False
    assert to_dict(PhaseConfig(select_best=True))["select_best"] is True
    # select_best off, said or not, is one run id; on is another
    profile, said_off = (
        load_profile("starter"),
        load_profile("starter", ["intermediate.select_best=false"]),
    )
    assert to_dict(profile)["intermediate"]["select_best"] is False
    assert config_hash(to_dict(said_off)) == config_hash(to_dict(profile))
    said_on = load_profile("starter", ["intermediate.select_best=true"])
    assert config_hash(to_dict(said_on)) != config_hash(to_dict(profile))
    on = load_profile("starter", ["intermediate.select_best=true"])
    assert phases.phase2_dir(on, ["starter-vqa"], 1, "r", "s") != phases.phase2_dir(
        profile, ["starter-vqa"], 1, "r", "s"
    )

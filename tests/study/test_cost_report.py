"""The cost section of ``mmxfer study --dry-run``: the printed tables, the wall time on N GPUs, the budget rule."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from mmxfer.cli import main
from mmxfer.study import cost_report
from mmxfer.study.cost import Estimate, Work
from mmxfer.study.throughput import cpu_device


def _work(
    arm, target, seed, hours, *, phase="phase 3", job=None, after=None, group="classification"
):
    return Work(
        phase,
        "train",
        arm,
        target,
        group,
        seed,
        job or f"{arm}-{target}-{seed}",
        after,
        seconds=hours * 3600,
    )


def test_paper_dry_run_prints_gpu_hours_with_the_assumptions_named(tmp_path, capsys):
    assert (
        main(
            [
                "study",
                "paper",
                "--dry-run",
                "--runs-dir",
                str(tmp_path),
                "--gpus",
                "8",
                "--budget-gpu-hours",
                "200",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "cost of what remains to run, on H100 bf16" in out
    assert "ASSUMED: 7 of 7 rates" in out and "train_mfu 0.4 ASSUMED" in out
    for section in ("by phase", "by arm", "by target group"):
        assert f"  {section}\n" in out
    total = re.search(r"\n  total +\S+ +\S+ +([\d,.]+) +([\d,.]+)", out)
    # SixT's 230k updates per arm and seed
    assert total and float(total.group(2).replace(",", "")) > 100
    assert re.search(r"biggest items: translation stage 1 \(flores200-translate\)", out)
    assert "token lengths ASSUMED (no data measured here) for: " in out and "mnli" in out
    assert "wall time on 8 H100 GPU(s)" in out
    assert "budget 200.0 GPU-hours: the plan needs" in out and "seed 3" in out
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


def test_small_dry_run_costs_every_phase_on_another_gpu(tmp_path, capsys):
    assert main(["study", "small", "--dry-run", "--runs-dir", str(tmp_path), "--gpu", "a100"]) == 0
    out = capsys.readouterr().out
    assert "on A100 bf16 (312.0 TFLOP/s peak" in out
    for phase in ("phase 2", "phase 3", "retrieval"):
        assert re.search(rf"\n    {phase} +\S+", out)
    assert "translation" not in out.split("by phase")[1].split("by arm")[0]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--gpus", "0"], "--gpus: 0 is not allowed"),
        (["--budget-gpu-hours", "-3"], "--budget-gpu-hours: -3.0 is not allowed"),
        (["--gpu", "H1000"], "unknown GPU kind 'H1000' (did you mean H100"),
    ],
)
def test_bad_cost_options_end_in_one_line(tmp_path, capsys, args, message):
    assert main(["study", "small", "--dry-run", "--runs-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_wall_time_waits_for_phase2_and_fills_the_gpus():
    works = [
        _work("a", "p2", 1, 2, phase="phase 2", job="P"),
        _work("a", "x", 1, 3, job="R1", after="P"),
        _work("a", "y", 1, 1, job="R2", after="P"),
        _work("b", "x", 1, 4, job="R3"),
    ]
    assert cost_report.wall_seconds(works, 1) == pytest.approx(10 * 3600)  # everything in sequence
    # P then R1 (5 h) beside R3 + R2
    assert cost_report.wall_seconds(works, 2) == pytest.approx(5 * 3600)
    # the longest chain: P then R1
    assert cost_report.wall_seconds(works, 10) == pytest.approx(5 * 3600)


def _runs(arms: dict[str, tuple[str, ...]]) -> list[SimpleNamespace]:
    return [SimpleNamespace(arm=a, tasks=t) for a, t in arms.items()]


ARMS = {
    "baseline": (),
    "mnli": ("mnli",),
    "qqp": ("qqp",),
    "caption": ("caption",),
    "caption-text": ("caption-text",),
    "vqa": ("vqa",),
    "vqa-text": ("vqa-text",),
    "mix": ("mnli", "qqp"),
}


def _estimate(
    hours_of_arm: dict[str, float], targets=("xnli", "pawsx", "udpos"), seeds=(1, 2, 3)
) -> Estimate:
    works = [_work(a, t, s, h) for a, h in hours_of_arm.items() for t in targets for s in seeds]
    return Estimate(cpu_device(flops=1e11), works)


def test_budget_drops_the_third_seed_first():
    est = _estimate({a: 1.0 for a in ARMS})  # 8 arms x 3 targets x 3 seeds = 72 h
    fit = cost_report.fit_budget(est, _runs(ARMS), 48)
    assert (
        fit.dropped == ["seed 3"]
        and fit.seeds == [1, 2]
        and fit.hours == pytest.approx(48)
        and fit.fits
    )


def test_budget_then_drops_mixes_and_non_twin_text_arms_costliest_first():
    est = _estimate({**{a: 1.0 for a in ARMS}, "qqp": 2.0})
    fit = cost_report.fit_budget(est, _runs(ARMS), 30)
    assert fit.dropped[:4] == ["seed 3", "arm mix", "arm qqp", "arm mnli"]
    assert {"baseline", "caption", "caption-text", "vqa", "vqa-text"} <= set(fit.arms)


def test_budget_keeps_the_twin_comparison_and_one_target_per_category():
    est = _estimate({a: 1.0 for a in ARMS})
    fit = cost_report.fit_budget(est, _runs(ARMS), 0.5)
    assert not fit.fits
    assert fit.arms == ["baseline", "caption", "caption-text", "vqa", "vqa-text"]
    assert fit.seeds == [1] and fit.dropped[-1] == "seed 2"
    assert fit.targets == [
        "pawsx",
        "udpos",
    ]  # xnli and pawsx are both classification: one of them stays

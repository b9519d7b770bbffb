"""The cost section of ``mmxfer study CONFIG --dry-run``: tables of an :class:`~mmxfer.study.cost.Estimate`, the
wall time on ``--gpus N`` and what fits ``--budget-gpu-hours H``.

What fits a budget follows one rule, in this order, each step applied only as far as needed:

1. **seeds** above the second, the highest first: two seeds are the fewest from which the run variance can be
   estimated (pooled over the arms of a cell), and a third narrows the intervals least per GPU-hour;
2. **arms** outside the headline comparison, the most expensive first: multi-task mixes, then text arms that are
   no multimodal arm's twin; the baseline, the single-task multimodal arms and their text twins stay;
3. **targets**, the most expensive first, never the last one of a category (retrieval, which reads the trunk
   as it is, is never dropped);
4. the **second seed** (the intervals then hold example variance only: the report must say so).

Languages are never dropped: zero-shot evaluation is a small share of any plan (the table shows it), and a
language's scores are what the study reports.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmxfer import catalog
from mmxfer.study.cost import PHASES, Estimate, Work

Printer = Callable[[str], None]


def _si(value: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"


def hours(seconds: float) -> str:
    """GPU-hours with the digits that matter: 716 / 42.7 / 0.36 / 0.004."""
    h = seconds / 3600
    return (
        f"{h:,.0f}"
        if h >= 100
        else f"{h:.1f}"
        if h >= 10
        else f"{h:.2f}"
        if h >= 0.1
        else f"{h:.3f}"
    )


def _rows(works: Iterable[Work], key: Callable[[Work], str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for w in works:
        row = out.setdefault(key(w), [0.0, 0.0, 0.0, 0.0])
        row[0] += w.train_tokens
        row[1] += w.eval_tokens
        row[2] += w.flops
        row[3] += w.seconds
    return out


def _line(name: str, row: Sequence[float], total: float) -> str:
    share = f"{100 * row[3] / total:5.1f} %" if total else ""
    return (
        f"    {name:<34} {_si(row[0]):>10} {_si(row[1]):>10} {row[2] / 1e15:>12,.1f} "
        f"{hours(row[3]):>11}  {share}"
    )


def wall_seconds(works: Sequence[Work], gpus: int) -> float:
    """Wall time of the plan's jobs on ``gpus`` devices: one job (a phase-2 training or a run) per device, a run
    after its phase-2 trunk; list scheduling, the job heading the longest chain first."""
    duration: dict[str, float] = defaultdict(float)
    parent: dict[str, str] = {}
    for w in works:
        duration[w.job] += w.seconds
        if w.after and w.after != w.job:
            parent[w.job] = w.after
    children: dict[str, list[str]] = defaultdict(list)
    for job, after in parent.items():
        if after in duration:
            children[after].append(job)
    chain: dict[str, float] = {}
    for (
        job
    ) in duration:  # a run's chain is itself; a phase-2 job's chain is itself + its longest run
        chain[job] = duration[job] + max((duration[c] for c in children[job]), default=0.0)
    ready = [(-chain[j], j) for j in duration if parent.get(j) not in duration]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < gpus:
            _, job = heapq.heappop(ready)
            heapq.heappush(running, (now + duration[job], job))
        now, done = heapq.heappop(running)
        for child in children[done]:
            heapq.heappush(ready, (-chain[child], child))
    return now


@dataclass
class Fit:
    """What the budget rule kept and dropped."""

    seeds: list[int]
    arms: list[str]
    targets: list[str]
    dropped: list[str] = field(default_factory=list)
    hours: float = 0.0
    fits: bool = True


def _arm_roles(runs: Sequence[Any]) -> tuple[list[str], list[str], list[str]]:
    """``(kept arms, multi-task mixes, other text arms)``: the baseline, the single-task multimodal arms and
    their text twins are kept; the rest may be dropped, mixes first."""
    arms: dict[str, tuple[str, ...]] = {}
    for r in runs:
        arms.setdefault(r.arm, tuple(r.tasks))
    multimodal = {a for a, t in arms.items() if len(t) == 1 and catalog.modality_of(t) != "text"}
    twins_of = {catalog.task(arms[a][0]).name for a in multimodal}
    twins = {a for a, t in arms.items() if len(t) == 1 and catalog.task(t[0]).twin_of in twins_of}
    keep = [a for a, t in arms.items() if not t or a in multimodal or a in twins]
    mixes = [a for a, t in arms.items() if len(t) > 1 and a not in keep]
    others = [a for a in arms if a not in keep and a not in mixes]
    return keep, mixes, others


def fit_budget(estimate: Estimate, runs: Sequence[Any], budget_hours: float) -> Fit:
    """Apply the module's rule to ``estimate`` until it fits ``budget_hours`` (or nothing more may go)."""
    works = estimate.works
    seeds = sorted({w.seed for w in works})
    _, mixes, others = _arm_roles(runs)
    targets = list(
        dict.fromkeys(w.target for w in works if w.phase not in ("phase 2", "retrieval"))
    )
    category = {t: catalog.task(t).category for t in targets}
    fit = Fit(list(seeds), list(dict.fromkeys(r.arm for r in runs)), list(targets))

    def hours(seeds_: Sequence[int], arms_: Sequence[str], targets_: Sequence[str]) -> float:
        return (
            sum(
                w.seconds
                for w in works
                if w.seed in seeds_
                and w.arm in arms_
                and (w.phase in ("phase 2", "retrieval") or w.target in targets_)
            )
            / 3600
        )

    def by_cost(names: Sequence[str], attr: str) -> list[str]:
        cost: dict[str, float] = defaultdict(float)
        for w in works:
            cost[getattr(w, attr)] += w.seconds
        return sorted(names, key=lambda n: -cost.get(n, 0.0))

    fit.hours = hours(fit.seeds, fit.arms, fit.targets)
    steps: list[tuple[str, Any]] = [("seed", s) for s in sorted(seeds, reverse=True)[:-2]]  # 1
    steps += [("arm", a) for a in by_cost(mixes, "arm") + by_cost(others, "arm")]  # 2
    steps += [("target", t) for t in by_cost(targets, "target")]  # 3
    steps += [("seed", seeds[1])] if len(seeds) >= 2 else []  # 4
    for kind, name in steps:
        if fit.hours <= budget_hours:
            break
        if kind == "seed":
            fit.seeds.remove(name)
        elif kind == "arm":
            fit.arms.remove(name)
        elif sum(category[t] == category[name] for t in fit.targets) > 1:
            fit.targets.remove(name)
        else:
            continue
        fit.dropped.append(f"{kind} {name}")
        fit.hours = hours(fit.seeds, fit.arms, fit.targets)
    fit.fits = fit.hours <= budget_hours
    return fit


def print_cost(
    estimate: Estimate,
    runs: Sequence[Any],
    *,
    gpus: int | None = None,
    budget_hours: float | None = None,
    out: Printer = print,
) -> None:
    """The cost section of a dry run (see the module docstring for the budget rule)."""
    d = estimate.device
    total = estimate.total("seconds")
    out(
        f"\ncost of what remains to run, on {d.label} ({d.peak_flops / 1e12:,.1f} TFLOP/s peak; {d.source}):"
    )
    assumed = d.assumed
    rates = ", ".join(
        f"{n} {d.rate(n):g}" + (" ASSUMED" if n in assumed else " measured") for n in d.rates
    )
    out(f"  rates (mmxfer/resources/cost/throughput.json): {rates}")
    if assumed:
        out(
            f"  ASSUMED: {len(assumed)} of {len(d.rates)} rates - nothing measured for {d.label} yet "
            f"(benchmarks/gpu_check.py, then benchmarks/throughput_from_check.py)"
        )
    out(f"    {'':<34} {'train tok':>10} {'eval tok':>10} {'PFLOP':>12} {'GPU-hours':>11}")
    for title, key in (
        ("by phase", lambda w: w.phase),
        ("by arm", lambda w: w.arm),
        ("by target group", lambda w: w.group),
    ):
        out(f"  {title}")
        rows = _rows(estimate.works, key)
        names = [p for p in PHASES if p in rows] if title == "by phase" else list(rows)
        for name in names:
            out(_line(name, rows[name], total))
    out(
        _line(
            "total",
            [estimate.total(k) for k in ("train_tokens", "eval_tokens", "flops", "seconds")],
            total,
        ).replace("    total", "  total")
    )
    items = sorted(
        _rows(estimate.works, lambda w: f"{w.phase} {w.part} ({w.target})").items(),
        key=lambda kv: -kv[1][3],
    )[:5]
    out(
        "  biggest items: "
        + "; ".join(
            f"{name} {hours(row[3])} GPU-h ({100 * row[3] / max(total, 1e-9):.0f} %)"
            for name, row in items
        )
    )
    evaluation = sum(
        w.seconds
        for w in estimate.works
        if "evaluation" in w.part or "generation" in w.part or w.part == "embedding"
    )
    out(
        f"  zero-shot and dev evaluation (every language): {hours(evaluation)} GPU-h "
        f"({100 * evaluation / max(total, 1e-9):.1f} %)"
    )
    if estimate.assumed_lengths:
        out(
            f"  token lengths ASSUMED (no data measured here) for: {', '.join(estimate.assumed_lengths)}"
        )
    if estimate.assumed_languages:
        out(
            f"  {len(estimate.assumed_languages)} languages without a measured length ratio (the median of 61 "
            f"measured): {', '.join(estimate.assumed_languages[:8])}{' ...' if len(estimate.assumed_languages) > 8 else ''}"
        )
    for note in estimate.notes:
        out(f"  note: {note}")
    out(
        "  upper bound where early stopping would end a phase sooner; sizes as released (the task specs), not as a "
        "local data copy or fixtures would give them"
    )
    if gpus:
        wall = wall_seconds(estimate.works, gpus)
        days = f", {wall / 86400:,.1f} days" if wall >= 86400 else ""
        out(
            f"  wall time on {gpus} {d.kind} GPU(s): {hours(wall)} h{days} (one job per GPU - a run, or a "
            f"phase-2 training that its runs wait for - the longest chain first)"
        )
    if budget_hours is not None:
        print_fit(fit_budget(estimate, runs, budget_hours), estimate, budget_hours, out)


def print_fit(fit: Fit, estimate: Estimate, budget_hours: float, out: Printer = print) -> None:
    need = estimate.gpu_hours
    if need <= budget_hours:
        out(f"  budget {budget_hours:,.1f} GPU-hours: the whole plan fits ({need:,.1f})")
        return
    verdict = "fits" if fit.fits else "does NOT fit even after every step of the rule"
    out(
        f"  budget {budget_hours:,.1f} GPU-hours: the plan needs {need:,.1f}; dropping (rule: seeds above 2, arms "
        f"outside the twin comparison, costliest targets, the second seed): {', '.join(fit.dropped) or 'nothing'} "
        f"-> {fit.hours:,.1f} GPU-hours, {verdict}"
    )
    out(
        f"    keeps seeds {fit.seeds}, arms {', '.join(fit.arms)}; targets {', '.join(fit.targets)}"
        f"  (e.g. --set seeds=[{','.join(map(str, fit.seeds))}])"
    )

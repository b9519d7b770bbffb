"""The arms of a study and the comparisons between them, each a named contrast of arm means.

Two effects are kept apart:

* the modality effect - each multimodal arm (modality ``image-text`` or ``mixed``) against its text twin
  (``multimodal-vs-twin``: the text arm whose intermediate tasks are the twins of its own, the same questions or
  captions without the image; task specs name theirs in ``extra["twin_of"]``) and, with two or more twin pairs, the
  pooled twin margin (``pooled-twins``: the mean of the twin margins, so each multimodal arm meets only its own
  twin). Every other multimodal-text pair (``multimodal-vs-text``) and all multimodal arms against all text arms
  (``all-multimodal-vs-all-text``) compare different tasks as well as the modality: they are kept for reference,
  labelled confounded, and never headline.
* the effect of intermediate training on the trunk - every arm against the baseline (modality ``none``):
  ``multimodal-vs-baseline`` and ``text-vs-baseline`` (the STILTs effect; on retrieval targets, which use the trunk
  as it is, a negative margin is forgetting).
* a positive control - an arm whose intermediate tasks are known to move the targets
  (:func:`mmxfer.catalog.is_control`) - against the baseline alone (``control-vs-baseline``): it shows that the
  design detects an effect, and is no side of the modality question nor of the confirmatory family.

A comparison's ``weights`` say how it combines the arms' mean scores: ``+1, -1`` for a pair, ``+1/P, -1/P`` over
the P twin pairs for the pooled twin margin (:mod:`mmxfer.compare.variance` takes its variance from them).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mmxfer import catalog
from mmxfer.errors import ConfigError, DataError, RunStoreError

MULTIMODAL = ("image-text", "mixed")
TWIN, POOLED_TWINS, ALL_VS_ALL, OTHER_TEXT = (
    "multimodal-vs-twin",
    "pooled-twins",
    "all-multimodal-vs-all-text",
    "multimodal-vs-text",
)
VS_BASELINE = ("multimodal-vs-baseline", "text-vs-baseline")
CONTROL_VS_BASELINE = "control-vs-baseline"
#: comparison kinds of the modality effect, headline first; the rest compare an arm with the baseline
MODALITY_KINDS = (TWIN, POOLED_TWINS, ALL_VS_ALL, OTHER_TEXT)
#: the modality comparisons that isolate the image (a headline names only these)
TWIN_KINDS = (TWIN, POOLED_TWINS)
#: modality comparisons whose two sides differ in their tasks too
CONFOUNDED_KINDS = (ALL_VS_ALL, OTHER_TEXT)
POOLED_MULTIMODAL, POOLED_TWIN_SIDE = "pooled-multimodal", "pooled-twins"
ALL_MULTIMODAL, ALL_TEXT = "all-multimodal", "all-text"


@dataclass(frozen=True)
class Comparison:
    """``arm - reference`` as the contrast ``sum_a weight_a * mean score of arm a``."""

    arm: str
    reference: str
    kind: str
    weights: tuple[tuple[str, float], ...]

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(a for a, _ in self.weights)

    @property
    def arm_side(self) -> tuple[str, ...]:
        return tuple(a for a, w in self.weights if w > 0)

    @property
    def reference_side(self) -> tuple[str, ...]:
        return tuple(a for a, w in self.weights if w < 0)

    @property
    def name(self) -> str:
        return f"{self.arm} - {self.reference}"


def arm_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per arm: name, modality, intermediate tasks, seeds."""
    rows = []
    for arm, grp in results.groupby("arm", sort=True):
        modalities = sorted(set(grp["modality"]))
        if len(modalities) > 1:
            raise DataError(
                f"arm {arm!r} has runs of different modalities ({', '.join(modalities)}); "
                "give each arm one intermediate task set"
            )
        rows.append(
            {
                "arm": arm,
                "modality": modalities[0],
                "intermediate": grp["intermediate"].iloc[0],
                "seeds": ",".join(str(s) for s in sorted(grp["seed"].dropna().unique())),
                "n_runs": grp["run_id"].nunique(),
            }
        )
    return pd.DataFrame(rows)


def _canonical(name: str) -> str:
    spec = catalog.find_task(name)
    return spec.name if spec is not None else name


def _tasks_of(row: Any) -> frozenset[str]:
    return frozenset(_canonical(t) for t in str(row.intermediate or "").split(",") if t)


def twins(arms: pd.DataFrame) -> dict[str, str]:
    """multimodal arm -> its text twin: the text arm whose intermediate tasks are exactly the twins
    (``extra["twin_of"]``) of the multimodal arm's tasks; arms without such a partner are left out."""
    tasks = {row.arm: _tasks_of(row) for row in arms.itertuples()}
    modality = dict(zip(arms["arm"], arms["modality"]))
    out: dict[str, str] = {}
    for text_arm, names in tasks.items():
        if modality[text_arm] != "text" or not names:
            continue
        twin_of = set()
        for name in names:
            spec = catalog.find_task(name)
            partner = spec.twin_of if spec is not None else None
            if partner is None:
                break
            twin_of.add(_canonical(partner))
        else:
            for arm, mm_names in tasks.items():
                if (
                    modality[arm] in MULTIMODAL
                    and mm_names == frozenset(twin_of)
                    and arm not in out
                ):
                    out[arm] = text_arm
    return out


def _pair(arm: str, reference: str, kind: str) -> Comparison:
    return Comparison(arm, reference, kind, ((arm, 1.0), (reference, -1.0)))


def _means(arm: str, plus: list[str], reference: str, minus: list[str], kind: str) -> Comparison:
    weights: dict[str, float] = defaultdict(float)
    for a in plus:
        weights[a] += 1.0 / len(plus)
    for a in minus:
        weights[a] -= 1.0 / len(minus)
    return Comparison(arm, reference, kind, tuple(weights.items()))


def control_arms(arms: pd.DataFrame) -> set[str]:
    """The arms whose intermediate tasks are a positive control (:func:`mmxfer.catalog.is_control`)."""
    if arms.empty or "intermediate" not in arms:
        return set()
    return {
        a
        for a, t in zip(arms["arm"], arms["intermediate"])
        if catalog.is_control(str(t or "").split(","))
    }


def comparisons(arms: pd.DataFrame) -> list[Comparison]:
    """Each multimodal arm vs its text twin, the pooled twin margin (two or more pairs), every other multimodal-text
    pair and all multimodal arms vs all text arms (confounded, for reference), every arm vs the baseline, and a
    positive control vs the baseline (see the module docstring)."""
    by_mod = defaultdict(list)
    controls = control_arms(arms)
    for row in arms.itertuples():
        by_mod["control" if row.arm in controls else row.modality].append(row.arm)
    baselines = by_mod.get("none", [])
    if not baselines:
        raise RunStoreError(
            "no baseline arm among the finished runs (an arm with no intermediate task, "
            "`mmxfer train --intermediate none`); margins against the baseline need it"
        )
    multimodal = [a for m in MULTIMODAL for a in by_mod.get(m, [])]
    text = by_mod.get("text", [])
    twin = twins(arms)
    pairs = [_pair(a, twin[a], TWIN) for a in multimodal if a in twin]
    paired = [a for a in multimodal if a in twin]
    if len(paired) > 1:
        weights: dict[str, float] = defaultdict(float)
        for a in paired:
            weights[a] += 1.0 / len(paired)
            weights[twin[a]] -= 1.0 / len(paired)
        pairs.append(
            Comparison(POOLED_MULTIMODAL, POOLED_TWIN_SIDE, POOLED_TWINS, tuple(weights.items()))
        )
    if multimodal and text and (len(multimodal) > 1 or len(text) > 1):
        pairs.append(_means(ALL_MULTIMODAL, multimodal, ALL_TEXT, text, ALL_VS_ALL))
    pairs += [_pair(a, t, OTHER_TEXT) for a in multimodal for t in text if twin.get(a) != t]
    pairs += [_pair(a, b, "multimodal-vs-baseline") for a in multimodal for b in baselines]
    pairs += [_pair(t, b, "text-vs-baseline") for t in text for b in baselines]
    pairs += [
        _pair(c, b, CONTROL_VS_BASELINE) for c in by_mod.get("control", []) for b in baselines
    ]
    if not pairs:
        raise RunStoreError("nothing to compare: the finished runs have only baseline arms")
    return pairs


def pooled_members(comps: list[Comparison]) -> dict[str, tuple[str, ...]]:
    """Each pooled side a comparison names -> the arms behind it (for the report)."""
    out = {}
    for c in comps:
        if c.kind in (POOLED_TWINS, ALL_VS_ALL):
            out[c.arm] = c.arm_side
            out[c.reference] = c.reference_side
    return out


def check_consistent(results: pd.DataFrame) -> None:
    """One trunk and one suite per comparison (mixing them would confound the margins)."""
    trunks = sorted({t for t in results["trunk"].dropna() if t})
    if len(trunks) > 1:
        raise ConfigError(
            f"runs of different trunks are mixed ({', '.join(trunks)}); "
            "compare one trunk at a time (pass --runs for one study)"
        )
    if "suite" in results:
        suites = sorted({s for s in results["suite"].dropna() if s})
        if len(suites) > 1:
            raise ConfigError(
                f"runs of different suites are mixed ({', '.join(suites)}); "
                "compare runs of one suite at a time"
            )

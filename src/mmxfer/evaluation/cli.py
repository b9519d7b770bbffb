"""``mmxfer evaluate``: a trunk on retrieval tasks, a finished run on a suite, re-scoring a run, or scoring
translations made elsewhere (``--hypotheses DIR``)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from mmxfer import catalog, config
from mmxfer.config import SuiteTaskConfig
from mmxfer.console import print_table
from mmxfer.errors import ConfigError
from mmxfer.evaluation import suites
from mmxfer.evaluation.hypotheses import DEFAULT_TASK, score_hypotheses
from mmxfer.evaluation.retrieval import cached, trunk_embedder
from mmxfer.evaluation.runner import evaluate_retrieval, evaluate_trunk
from mmxfer.evaluation.scoring import rescore_run
from mmxfer.models.trunk import load_trunk
from mmxfer.runs import atomic
from mmxfer.runs.store import Run, slug
from mmxfer.tasks.common import evaluation_languages


def _score_text(row: dict[str, Any]) -> str:
    if row.get("score") is None:
        return "missing: " + str(row.get("missing") or "not scored").split(":")[0]
    return f"{row['score']:.2f}"


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = [(r["task"], r["lang"], r["split"], r["metric"] + (f" [{r['part']}]" if r.get("part") else ""),
              _score_text(r), r.get("n", "")) for r in rows]
    print_table(("task", "lang", "split", "metric", "score", "n"), table)
    reasons = dict.fromkeys(str(r["missing"]) for r in rows if r.get("score") is None and r.get("missing"))
    for reason in reasons:
        print(f"missing scores: {reason}")


def _print_suite_scores(agg: dict[str, Any], suite: str) -> None:
    rows = [(k, f"{v:.2f}") for k, v in agg.items() if isinstance(v, float)]
    if rows:
        print(f"\nsuite {suite}:")
        print_table(("task / category", "score"), rows)
    if agg.get("missing"):
        shown = ", ".join(agg["missing"][:10]) + (" ..." if len(agg["missing"]) > 10 else "")
        print(f"not scored ({len(agg['missing'])}): {shown}")


def scores_json(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """task -> language -> metric -> value (headline under the metric name, then every score key)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r.get("part"):
            out.setdefault(r["task"], {}).setdefault(r["lang"], {})[f"{r['metric']}.{r['part']}"] = r["score"]
            continue
        entry = out.setdefault(r["task"], {}).setdefault(r["lang"], {})
        entry[r["metric"]] = r["score"]
        if r.get("missing"):
            entry[f"{r['metric']}.missing"] = r["missing"]
        entry.update({k: v for k, v in (r.get("scores") or {}).items() if k != r["metric"]})
        if r.get("settings"):
            entry["settings"] = r["settings"]
    return out


def _items(args: argparse.Namespace) -> tuple[list[SuiteTaskConfig], str | None]:
    catalog.load_plugins()
    langs = tuple(x.strip() for x in args.languages.split(",") if x.strip()) if args.languages else None
    if langs is None and args.run:  # a run limited to some languages covers only those
        langs = tuple(Run(args.run).config().get("languages") or ()) or None
    if args.task:
        spec = catalog.task(args.task)
        return [SuiteTaskConfig(task=spec.name, languages=langs, split=spec.splits[-1])], None
    suite = config.load_suite(args.suite)
    items = suites.suite_tasks(suite)
    if langs:  # each task's own codes for the languages it has (deu_Latn -> de for XNLI); tasks with none drop out
        limited = []
        for item in items:
            own = tuple(evaluation_languages(catalog.task(item.task), langs, args.data_dir)) \
                if item.task in catalog.TASKS else langs
            if own:
                limited.append(dataclasses.replace(item, languages=own, params=dict(item.params)))
            else:
                print(f"skip {item.label or item.task}: none of the languages {', '.join(langs)}")
        items = limited
    return items, suite.name


def _split_items(items: list[SuiteTaskConfig]) -> list[SuiteTaskConfig]:
    keep = []
    for item in items:
        if suites.uses_trunk(item):
            keep.append(item)
        else:
            print(f"skip {item.label or item.task}: a {item.mode if item.mode != 'auto' else 'fine-tuned'} task "
                  f"needs a fine-tuned run (mmxfer train ... then mmxfer evaluate --run RUN)")
    return keep


def _write_output(path: str | None, rows: list[dict[str, Any]]) -> None:
    if path:
        atomic.write_json(path, scores_json(rows))
        print(f"scores written to {path}")


def _hypotheses(args: argparse.Namespace) -> int:
    langs = [x.strip() for x in args.languages.split(",") if x.strip()] if args.languages else None
    out_dir = Path(args.out_dir) if args.out_dir else Path("eval") / f"hypotheses-{slug(Path(args.hypotheses).name)}"
    rows = score_hypotheses(args.hypotheses, out_dir, task=args.task or DEFAULT_TASK, data_dir=args.data_dir,
                            languages=langs)
    _print_table(rows)
    print(f"predictions and metrics in {out_dir}")
    _write_output(args.output, rows)
    return 0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "hypotheses", None):
        return _hypotheses(args)
    if args.rescore:
        rows = rescore_run(args.rescore)
        _print_table(rows)
        _write_output(args.output, rows)
        return 0
    if not (args.trunk or args.run):
        raise ConfigError("say what to evaluate: --trunk NAME_OR_DIR, --run RUN, --rescore RUN or --hypotheses DIR")
    if not (args.suite or args.task):
        if args.run:
            args.suite = config.load(config.ExperimentConfig, base=_run_profile(args.run)).suite
        else:
            raise ConfigError("give --suite NAME or --task NAME")
    items, suite_name = _items(args)
    if args.trunk:
        profile = config.load_profile(args.profile, args.overrides)
        out_dir = Path(args.out_dir) if args.out_dir else Path("eval") / slug(Path(args.trunk).name or args.trunk)
        trunk_items = _split_items(items)
        rows = evaluate_trunk(args.trunk, trunk_items, profile, out_dir, data_dir=args.data_dir) if trunk_items else []
        print(f"predictions and metrics in {out_dir}")
    else:
        rows = _evaluate_run(args, items)
    _print_table(rows)
    if suite_name:
        _print_suite_scores(suites.suite_scores(rows, suite_name), suite_name)
    _write_output(args.output, rows)
    return 0


def _run_profile(run_dir: str) -> dict[str, Any]:
    data = Run(run_dir).config()
    return data.get("profile", data) if isinstance(data.get("profile"), dict) else data


def _evaluate_run(args: argparse.Namespace, items: list[SuiteTaskConfig]) -> list[dict[str, Any]]:
    """Re-score a finished run's predictions and evaluate its trunk folder on the retrieval tasks."""
    run = Run(args.run)
    run.require_done()
    rows = run.metrics()
    if any(True for _ in run.prediction_files()):
        rows = rescore_run(run)
    trunk_dir = run.path / "trunk"
    retrieval_items = [i for i in items if suites.uses_trunk(i)]
    if retrieval_items and trunk_dir.is_dir():
        try:
            profile = config.load(config.ExperimentConfig, base=_run_profile(args.run), overrides=args.overrides)
        except ConfigError:
            profile = config.load_profile(args.profile, args.overrides)
        model, tokenizer = load_trunk(str(trunk_dir))
        embed, layer = trunk_embedder(model, tokenizer, profile.retrieval, max_length=profile.trunk.max_length)
        embed = cached(embed)  # the English side repeats across languages
        for item in retrieval_items:
            new = evaluate_retrieval(item, embed, profile.retrieval, run.path, layer=layer, trunk=str(trunk_dir),
                                     max_length=profile.trunk.max_length, data_dir=args.data_dir)
            replaced = {(n["task"], n["lang"]) for n in new}
            rows = [r for r in rows if (r["task"], r["lang"]) not in replaced] + new
        run.write_metrics(rows)
    elif retrieval_items:
        print(f"no trunk folder in {run.path}: retrieval tasks are scored only from stored predictions")
    return rows


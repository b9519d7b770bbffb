"""``mmxfer evaluate``: a trunk on retrieval tasks, a finished run on a suite, re-scoring a run, or scoring
translations made elsewhere (``--hypotheses DIR``).

Output paths (``--output``, ``--out-dir``) are checked before any work. ``--out-dir`` of a trunk evaluation
gets its own metrics.jsonl, so it may not be a run folder (``evaluate --run`` re-evaluates a run in place);
a folder is evaluated into by one process at a time, and a run is re-scored only while no one else holds it.
The evaluation modules (torch, datasets) are imported where they are used, so ``mmxfer --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from mmxfer import catalog, config
from mmxfer.cli.common import Command, add_overrides
from mmxfer.config import SuiteTaskConfig
from mmxfer.console import print_table
from mmxfer.errors import ConfigError, DataError
from mmxfer.evaluation.prediction_types import check_prediction_files
from mmxfer.runs import atomic
from mmxfer.runs.lock import FileLock
from mmxfer.runs.store import DONE, Run, check_name, slug

EPILOG = """examples:
  mmxfer evaluate --trunk starter --suite starter
  mmxfer evaluate --trunk xlm-roberta-large --suite xtreme-retrieval
  mmxfer evaluate --trunk starter --task tatoeba --data-dir DIR --languages kaz,amh --output scores.json
  mmxfer evaluate --run runs/default/vqa-xnli-s1-1a2b3c --suite xtreme
  mmxfer evaluate --rescore runs/default/vqa-xnli-s1-1a2b3c
  mmxfer evaluate --hypotheses hyps/ --data-dir flores200 --languages deu_Latn,swh_Latn --output scores.json
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group()
    who.add_argument("--trunk", help="registered trunk name, hub id, or a trunk folder")
    who.add_argument("--run", help="a finished run folder")
    who.add_argument("--rescore", metavar="RUN", help="re-score a run's stored predictions")
    who.add_argument(
        "--hypotheses",
        metavar="DIR",
        help="score translations made elsewhere: DIR/<lang>.txt, line-aligned to FLORES-200 devtest",
    )
    p.add_argument("--suite", default=None, help="suite name or YAML path")
    p.add_argument("--task", default=None, help="one task instead of a suite")
    p.add_argument("--languages", default=None, help="comma list of languages to evaluate")
    p.add_argument(
        "--data-dir", default=None, help="local copies of datasets in their release formats"
    )
    p.add_argument(
        "--output", default=None, help="write scores as JSON: task -> language -> metric -> value"
    )
    p.add_argument(
        "--profile",
        default=None,
        help="profile for model and retrieval settings [default: the profile that defines --trunk, "
        "else XTREME's retrieval settings]",
    )
    p.add_argument("--out-dir", default=None, help="folder for predictions of a trunk evaluation")
    add_overrides(p)


def _score_text(row: dict[str, Any]) -> str:
    if row.get("score") is None:
        return "missing: " + str(row.get("missing") or "not scored").split(":")[0]
    return f"{row['score']:.2f}" + ("*" if row.get("caveat") else "")


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = [
        (
            r["task"],
            r["lang"],
            r["split"],
            r["metric"] + (f" [{r['part']}]" if r.get("part") else ""),
            _score_text(r),
            r.get("n", ""),
        )
        for r in rows
    ]
    print_table(("task", "lang", "split", "metric", "score", "n"), table)
    for caveat in dict.fromkeys(r["caveat"] for r in rows if r.get("caveat")):
        tasks = ", ".join(dict.fromkeys(r["task"] for r in rows if r.get("caveat") == caveat))
        print(f"* {tasks}: {caveat}")
    reasons = dict.fromkeys(
        str(r["missing"]) for r in rows if r.get("score") is None and r.get("missing")
    )
    for reason in reasons:
        print(f"missing scores: {reason}")


def _print_suite_scores(agg: dict[str, Any], suite: str) -> None:
    caveats = agg.get("caveats") or {}
    rows = [
        (k, f"{v:.2f}" + ("*" if k in caveats else ""))
        for k, v in agg.items()
        if isinstance(v, float)
    ]
    if rows:
        print(f"\nsuite {suite}:")
        print_table(("task / category", "score"), rows)
    for task, caveat in caveats.items():
        print(f"* {task}: {caveat} (and every average that includes it)")
    if agg.get("missing"):
        shown = ", ".join(agg["missing"][:10]) + (" ..." if len(agg["missing"]) > 10 else "")
        print(f"not scored ({len(agg['missing'])}): {shown}")


def scores_json(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """task -> language -> metric -> value (headline under the metric name, then every score key)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r.get("part"):
            out.setdefault(r["task"], {}).setdefault(r["lang"], {})[
                f"{r['metric']}.{r['part']}"
            ] = r["score"]
            continue
        entry = out.setdefault(r["task"], {}).setdefault(r["lang"], {})
        entry[r["metric"]] = r["score"]
        if r.get("missing"):
            entry[f"{r['metric']}.missing"] = r["missing"]
        entry.update({k: v for k, v in (r.get("scores") or {}).items() if k != r["metric"]})
        if r.get("settings"):
            entry["settings"] = r["settings"]
        if r.get("caveat"):
            entry["caveat"] = r["caveat"]
    return out


def _items(args: argparse.Namespace) -> tuple[list[SuiteTaskConfig], str | None]:
    from mmxfer.evaluation import suites
    from mmxfer.tasks.common import evaluation_languages

    catalog.load_plugins()
    langs = (
        tuple(check_name("language", x.strip()) for x in args.languages.split(",") if x.strip())
        if args.languages
        else None
    )
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
            own = (
                tuple(evaluation_languages(catalog.task(item.task), langs, args.data_dir))
                if item.task in catalog.TASKS
                else langs
            )
            if own:
                limited.append(dataclasses.replace(item, languages=own, params=dict(item.params)))
            else:
                print(f"skip {item.label or item.task}: none of the languages {', '.join(langs)}")
        items = limited
    return items, suite.name


def _split_items(items: list[SuiteTaskConfig]) -> list[SuiteTaskConfig]:
    from mmxfer.evaluation import suites

    keep = []
    for item in items:
        if suites.uses_trunk(item):
            keep.append(item)
        else:
            print(
                f"skip {item.label or item.task}: a {item.mode if item.mode != 'auto' else 'fine-tuned'} task "
                f"needs a fine-tuned run (mmxfer train ... then mmxfer evaluate --run RUN)"
            )
    return keep


def _write_output(path: str | None, rows: list[dict[str, Any]]) -> None:
    if path:
        atomic.write_json(path, scores_json(rows))
        print(f"scores written to {path}")


def _hypotheses(args: argparse.Namespace) -> int:
    from mmxfer.evaluation.hypotheses import DEFAULT_TASK, score_hypotheses

    langs = (
        [check_name("language", x.strip()) for x in args.languages.split(",") if x.strip()]
        if args.languages
        else None
    )
    out_dir = (
        Path(args.out_dir)
        if args.out_dir
        else Path("eval") / f"hypotheses-{slug(Path(args.hypotheses).name)}"
    )
    check_out_dir(out_dir)
    rows = score_hypotheses(
        args.hypotheses,
        out_dir,
        task=args.task or DEFAULT_TASK,
        data_dir=args.data_dir,
        languages=langs,
    )
    _print_table(rows)
    print(f"predictions and metrics in {out_dir}")
    _write_output(args.output, rows)
    return 0


def check_out_dir(out_dir: Path) -> Path:
    """``--out-dir`` of a trunk evaluation: writable, and not a run folder (its metrics would be replaced)."""
    if (out_dir / DONE).is_file() or (out_dir / "config.yaml").is_file():
        state = "finished run" if (out_dir / DONE).is_file() else "run"
        raise ConfigError(
            f"--out-dir {out_dir} is a {state} folder; a trunk evaluation writes its own "
            f"metrics.jsonl there and would replace the run's: give another folder (to evaluate "
            f"the run itself: mmxfer evaluate --run {out_dir})"
        )
    return atomic.check_output_dir(out_dir, "--out-dir")


def _existing_run(path: str, option: str) -> Run:
    run = Run(path)
    if not run.path.is_dir():
        raise DataError(f"{option} {path}: run folder not found")
    return run


def _rescore(args: argparse.Namespace) -> list[dict[str, Any]]:
    from mmxfer.evaluation.scoring import rescore_run

    run = _existing_run(args.rescore, "--rescore")
    files = list(run.prediction_files())
    if not files:
        raise DataError(
            f"{run.path}: no predictions files to re-score (predictions/<task>/<split>-<lang>.jsonl)"
        )
    check_prediction_files(files, _stored_metrics(run))
    with FileLock(run.path, "run folder"):
        return rescore_run(run)


def _stored_metrics(run: Run) -> dict[tuple[str, str, str], str]:
    """(task, split, lang) -> the metric a run's stored rows used (what re-scoring uses again)."""
    return {
        (r.get("task"), r.get("split"), r.get("lang")): r.get("metric")
        for r in run.metrics()
        if isinstance(r, dict) and "part" not in r
    }


def run(args: argparse.Namespace) -> int:
    if args.output:
        atomic.check_output_file(args.output, "--output")
    if args.hypotheses:
        return _hypotheses(args)
    if args.rescore:
        rows = _rescore(args)
        _print_table(rows)
        _write_output(args.output, rows)
        return 0
    if not (args.trunk or args.run):
        raise ConfigError(
            "say what to evaluate: --trunk NAME_OR_DIR, --run RUN, --rescore RUN or --hypotheses DIR"
        )
    if args.run:
        _existing_run(args.run, "--run").require_done()
    if not (args.suite or args.task):
        if args.run:
            args.suite = config.load(config.ExperimentConfig, base=_run_profile(args.run)).suite
        else:
            raise ConfigError("give --suite NAME or --task NAME")
    items, suite_name = _items(args)
    if args.trunk:
        rows = _evaluate_trunk(args, items)
    else:
        with FileLock(args.run, "run folder"):
            rows = _evaluate_run(args, items)
    _print_table(rows)
    if suite_name:
        from mmxfer.evaluation import suites

        _print_suite_scores(suites.suite_scores(rows, suite_name), suite_name)
    _write_output(args.output, rows)
    return 0


def _evaluate_trunk(args: argparse.Namespace, items: list[SuiteTaskConfig]) -> list[dict[str, Any]]:
    """A trunk (registered name, hub id or folder) on the suite's retrieval tasks, into ``--out-dir``."""
    from mmxfer.evaluation.retrieval import trunk_profile
    from mmxfer.evaluation.runner import evaluate_trunk

    profile = trunk_profile(args.trunk, args.profile, args.overrides)
    out_dir = (
        Path(args.out_dir)
        if args.out_dir
        else Path("eval") / slug(Path(args.trunk).name or args.trunk)
    )
    check_out_dir(out_dir)
    trunk_items = _split_items(items)
    with FileLock(out_dir, "evaluation folder"):
        rows = (
            evaluate_trunk(args.trunk, trunk_items, profile, out_dir, data_dir=args.data_dir)
            if trunk_items
            else []
        )
    print(f"predictions and metrics in {out_dir}")
    return rows


def _run_profile(run_dir: str) -> dict[str, Any]:
    data = Run(run_dir).config()
    return data.get("profile", data) if isinstance(data.get("profile"), dict) else data


def _evaluate_run(args: argparse.Namespace, items: list[SuiteTaskConfig]) -> list[dict[str, Any]]:
    """Re-score a finished run's predictions and evaluate its trunk folder on the retrieval tasks."""
    from mmxfer.evaluation import suites
    from mmxfer.evaluation.retrieval import cached, describe, retrieval_max_length, trunk_embedder
    from mmxfer.evaluation.runner import evaluate_retrieval
    from mmxfer.evaluation.scoring import rescore_run
    from mmxfer.models.trunk import load_trunk

    run = Run(args.run)
    run.require_done()
    rows = run.metrics()
    files = list(run.prediction_files())
    if files:
        check_prediction_files(files, _stored_metrics(run))
        rows = rescore_run(run)
    trunk_dir = run.path / "trunk"
    retrieval_items = [i for i in items if suites.uses_trunk(i)]
    if retrieval_items and trunk_dir.is_dir():
        try:
            profile = config.load(
                config.ExperimentConfig, base=_run_profile(args.run), overrides=args.overrides
            )
        except ConfigError:
            profile = config.load_profile(args.profile or "starter", args.overrides)
        model, tokenizer = load_trunk(str(trunk_dir))
        max_length = retrieval_max_length(profile)
        embed, layer = trunk_embedder(model, tokenizer, profile.retrieval, max_length=max_length)
        max_length = getattr(embed, "max_length", max_length)
        print(describe(profile, layer, model.config.num_hidden_layers, max_length))
        embed = cached(embed)  # the English side repeats across languages
        for item in retrieval_items:
            new = evaluate_retrieval(
                item,
                embed,
                profile.retrieval,
                run.path,
                layer=layer,
                trunk=str(trunk_dir),
                max_length=max_length,
                data_dir=args.data_dir,
            )
            replaced = {(n["task"], n["lang"]) for n in new}
            rows = [r for r in rows if (r["task"], r["lang"]) not in replaced] + new
        run.write_metrics(rows)
    elif retrieval_items:
        print(
            f"no trunk folder in {run.path}: retrieval tasks are scored only from stored predictions"
        )
    return rows


COMMAND = Command(
    "evaluate",
    help="evaluate a trunk or a finished run on a suite or one task",
    description="Zero-shot evaluation. Predictions are written to files first, then scored.",
    epilog=EPILOG,
    add_arguments=add_arguments,
    run=run,
    outputs=(("out_dir", "--out-dir", "dir"), ("output", "--output", "file")),
    fills_cache=lambda args: not args.rescore,
)  # re-scoring reads stored predictions only

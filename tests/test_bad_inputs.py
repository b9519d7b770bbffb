"""Replay of careless and hostile inputs: each must end with the expected exit code and one clear line.

Every case is a command line (built in a fresh folder, on copies of a finished tiny run or of a synthetic
study), the exit code it must give and words its one-line message must hold. A case is handled cleanly
when the code matches, nothing shows a traceback, the message is a line of its own that holds every word,
and - for the config cases - no run folder was made. ``test_replay_count`` prints the count.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from mmxfer.cli import main
from mmxfer.runs.store import Run
from mmxfer.testing.synthetic import SynthArm, SynthTask, make_study
from mmxfer.train import loop

TINY = ["--set", "trunk.name=tiny", "--set", "trunk.freeze_embeddings=false",
        "--set", "target.max_train_examples=16", "--set", "target.batch_size=8", "--set", "target.epochs=1",
        "--set", "target.max_eval_examples=8", "--set", "target.checkpoint_every=1"]
TRAIN = ["train", "--intermediate", "none", "--target", "starter-names", "--seed", "1", *TINY]
EVAL_TRUNK = ["evaluate", "--trunk", "tiny", "--task", "starter-bitext", "--languages", "de"]


@dataclass
class Ctx:
    """One case's folder, with copies of the shared fixtures made on demand."""

    ws: Path
    finished: Path  # a finished tiny run folder (runs/starter/<id>)
    synthetic: Path  # a synthetic study folder with three arms
    killed: Path  # the same run, killed right after its first checkpoint

    def run(self) -> Path:
        """A copy of the finished run at ``runs/starter/<id>`` under the case folder (same id as TRAIN)."""
        dest = self.ws / "runs" / "starter" / self.finished.name
        if not dest.exists():
            shutil.copytree(self.finished, dest)
        return dest

    def unfinished(self) -> Path:
        """A copy of the killed run at ``runs/starter/<id>`` (resumable with TRAIN + --resume)."""
        dest = self.ws / "runs" / "starter" / self.killed.name
        if not dest.exists():
            shutil.copytree(self.killed, dest)
        return dest

    def study(self) -> Path:
        dest = self.ws / "syn"
        if not dest.exists():
            shutil.copytree(self.synthetic, dest)
        return dest

    def syn_run(self, arm: str = "vqa", seed: int = 1) -> Path:
        return next(p for p in sorted((self.study() / "synthetic").iterdir()) if p.name.startswith(f"{arm}-xnli-s{seed}"))


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], list[str]]
    code: int
    words: tuple[str, ...]
    no_run_folder: bool = False  # the runs folder must not exist afterwards
    check: Callable[[Ctx], None] | None = None  # more to assert afterwards
    stream: str = "err"  # where the words are: "err" (the error line) or "out" (a successful command)


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


def _yaml(ctx: Ctx, name: str, data: object) -> str:
    return str(_write(ctx.ws / name, yaml.safe_dump(data)))


def _mini_study(ctx: Ctx, **changes: object) -> str:
    data = {"name": "mini", "profile": "starter", "arms": [{"name": "baseline", "intermediate": []}],
            "targets": ["starter-names"], "seeds": [1], "overrides": ["trunk.name=tiny"], **changes}
    return _yaml(ctx, "mini.yaml", data)


def _edit_lines(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")


def _format0_done(run: Path, keep_format: bool = False) -> None:
    """DONE as code before numbered run formats wrote it: no run_format, a row count only, no checksums
    (``keep_format``: the checksums gone from a DONE of this format)."""
    info = json.loads((run / "DONE").read_text())
    for key in ("metrics_sha256", "predictions_sha256", *(() if keep_format else ("run_format",))):
        info.pop(key, None)
    (run / "DONE").write_text(json.dumps(info))


def _reseal(run: Path) -> None:
    """DONE rewritten to record the files as they are now (as if they were replaced before the run finished)."""
    info = json.loads((run / "DONE").read_text())
    (run / "DONE").write_text(json.dumps({**info, **Run(run).seal()}))


def _flip_predictions(run: Path) -> None:
    path = next((run / "predictions").glob("*/*.jsonl"))
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    for r in rows[: len(rows) // 2]:
        r["pred"] = r["gold"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


class Payload:
    """A pickle that runs a shell command when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant_checkpoint(ctx: Ctx, filename: str) -> list[str]:
    """The killed run, its checkpoint's ``filename`` replaced by a pickle that runs a shell command."""
    (ckpt,) = (ctx.unfinished() / "checkpoints").glob("step-*")
    torch.save(Payload(ctx.ws / "PWNED"), ckpt / filename)
    return [*TRAIN, "--runs-dir", "runs", "--resume"]


def _not_pwned(ctx: Ctx) -> None:
    assert not (ctx.ws / "PWNED").exists(), "a checkpoint ran code"


def _metrics_unchanged(ctx: Ctx) -> None:
    run = ctx.run()
    assert sum(1 for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()) == 30
    assert (run / "DONE").is_file()


def _sleeper(ctx: Ctx) -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    ctx.ws.joinpath(".sleeper").write_text(str(proc.pid))
    return proc.pid


def _locked_run(ctx: Ctx) -> list[str]:
    run = ctx.unfinished()
    pid = _sleeper(ctx)
    (run / "LOCK").write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "started": "earlier",
                                          "command": "mmxfer train", "token": "t"}))
    return [*TRAIN, "--runs-dir", "runs", "--resume"]


def _stale_lock(ctx: Ctx) -> list[str]:
    """The killed run, its LOCK left by a process that is gone (kill -9 leaves exactly this)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (ctx.unfinished() / "LOCK").write_text(json.dumps({"pid": proc.pid, "host": os.uname().nodename,
                                                         "command": "mmxfer train", "token": "gone"}))
    return [*TRAIN, "--runs-dir", "runs", "--resume"]


def _symlinked_run(ctx: Ctx) -> list[str]:
    real = ctx.ws / "elsewhere"
    shutil.copytree(ctx.finished, real)
    (ctx.ws / "runs2" / "starter").mkdir(parents=True)
    (ctx.ws / "runs2" / "starter" / ctx.finished.name).symlink_to(real, target_is_directory=True)
    return [*TRAIN, "--runs-dir", "runs2", "--force"]


def _symlinked_baseline(ctx: Ctx) -> list[str]:
    study = ctx.study() / "synthetic"
    for run in sorted(study.iterdir()):
        if run.name.startswith("baseline-"):
            moved = ctx.ws / "shared" / run.name
            moved.parent.mkdir(exist_ok=True)
            shutil.move(run, moved)
            run.symlink_to(moved, target_is_directory=True)
    return ["compare", "--suite", _suite(ctx), "--runs", str(study), "--out", "rep", "--bootstrap", "50"]


def _suite(ctx: Ctx) -> str:
    return str(_write(ctx.ws / "synth.yaml", "name: synth\ntasks:\n  - task: xnli\n"))


def _compare(ctx: Ctx) -> list[str]:
    return ["compare", "--suite", _suite(ctx), "--runs", str(ctx.study() / "synthetic"), "--out", "rep",
            "--bootstrap", "50"]


def _damaged(edit: Callable[[Ctx, Path], None]) -> Callable[[Ctx], list[str]]:
    def argv(ctx: Ctx) -> list[str]:
        edit(ctx, ctx.syn_run())
        return _compare(ctx)
    return argv


def _gz_corrupt(ctx: Ctx) -> list[str]:
    good = gzip.compress(b"Salem\nRahmet\n")
    bad = good[:10] + b"\x00garbage that is not deflate data" * 4 + good[-8:]
    _write(ctx.ws / "data" / "tatoeba.kaz-eng.kaz.gz", bad)
    _write(ctx.ws / "data" / "tatoeba.kaz-eng.eng.gz", bad)
    return ["evaluate", "--trunk", "tiny", "--task", "tatoeba", "--languages", "kaz", "--data-dir", "data"]


def _rescore_with(edit: Callable[[Path], None]) -> Callable[[Ctx], list[str]]:
    def argv(ctx: Ctx) -> list[str]:
        run = ctx.run()
        edit(run)
        return ["evaluate", "--rescore", str(run)]
    return argv


def _first_predictions(run: Path) -> Path:
    return sorted((run / "predictions").glob("*/*.jsonl"))[0]


def _strings_as_predictions(run: Path) -> None:
    path = _first_predictions(run)
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "pred": "yes"}) + "\n" for r in rows))


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _file(ctx: Ctx) -> Path:
    return _write(ctx.ws / "a-file", "x")


CASES: list[Case] = [
    # --- values that make wrong runs: one line naming the key, before any run folder exists
    Case("seed-negative", lambda c: [*TRAIN, "--seed", "-1", "--runs-dir", "runs"], 2, ("--seed", "-1"), True),
    Case("seed-too-big", lambda c: [*TRAIN, "--seed", str(2**32), "--runs-dir", "runs"], 2, ("--seed",), True),
    Case("lr-nan", lambda c: [*TRAIN, "--set", "target.lr=nan", "--runs-dir", "runs"], 2, ("target.lr", "nan"), True),
    Case("lr-inf", lambda c: [*TRAIN, "--set", "target.lr=inf", "--runs-dir", "runs"], 2, ("target.lr",), True),
    Case("lr-zero", lambda c: [*TRAIN, "--set", "target.lr=0", "--runs-dir", "runs"], 2, ("target.lr",), True),
    Case("lr-negative", lambda c: [*TRAIN, "--set", "intermediate.lr=-1e-5", "--runs-dir", "runs"], 2,
         ("intermediate.lr",), True),
    Case("epochs-zero", lambda c: [*TRAIN, "--set", "target.epochs=0", "--runs-dir", "runs"], 2,
         ("target.epochs",), True),
    Case("epochs-negative", lambda c: [*TRAIN, "--set", "target.epochs=-2", "--runs-dir", "runs"], 2,
         ("target.epochs",), True),
    Case("retrieval-k-zero", lambda c: [*TRAIN, "--set", "retrieval.k=0", "--runs-dir", "runs"], 2,
         ("retrieval.k",), True),
    Case("max-length-negative", lambda c: [*TRAIN, "--set", "trunk.max_length=-5", "--runs-dir", "runs"], 2,
         ("trunk.max_length", "-5"), True),
    Case("batch-size-zero", lambda c: [*TRAIN, "--set", "target.batch_size=0", "--runs-dir", "runs"], 2,
         ("target.batch_size",), True),
    Case("warmup-above-one", lambda c: [*TRAIN, "--set", "target.warmup_ratio=1.5", "--runs-dir", "runs"], 2,
         ("target.warmup_ratio",), True),
    Case("target-override-epochs-zero",
         lambda c: [*TRAIN, "--set", "target_overrides.starter-names.epochs=0", "--runs-dir", "runs"], 2,
         ("target_overrides.starter-names.epochs",), True),
    Case("validate-seed-negative", lambda c: ["validate", "starter", "--set", "seed=-1"], 2, ("seed", "-1")),
    Case("study-seed-negative", lambda c: ["study", _mini_study(c, seeds=[-1]), "--dry-run"], 2, ("seeds[0]",)),
    Case("config-typo", lambda c: [*TRAIN, "--set", "target.lrr=1e-5", "--runs-dir", "runs"], 2,
         ("target.lrr", "did you mean lr"), True),
    Case("unknown-target", lambda c: ["train", "--target", "xnlii", "--runs-dir", "runs"], 2, ("xnlii",), True),
    # --- names that become paths
    Case("study-dotdot", lambda c: [*TRAIN, "--study", "..", "--runs-dir", "runs"], 2, ("study", "'..'"), True),
    Case("study-slash", lambda c: [*TRAIN, "--study", "a/../../b", "--runs-dir", "runs"], 2, ("study",), True),
    Case("study-empty", lambda c: [*TRAIN, "--set", "study=", "--runs-dir", "runs"], 2, ("study", "empty"), True),
    Case("arm-traversal", lambda c: [*TRAIN, "--arm", "../../x", "--runs-dir", "runs"], 2, ("arm",), True),
    Case("study-file-arm-traversal",
         lambda c: ["study", _mini_study(c, arms=[{"name": "../evil", "intermediate": []}]), "--runs-dir", "runs"],
         2, ("arm", "../evil"), True),
    Case("study-file-name-dotdot", lambda c: ["study", _mini_study(c, name=".."), "--runs-dir", "runs"], 2,
         ("study",), True),
    Case("language-traversal", lambda c: [*EVAL_TRUNK[:-1], "../../x", "--out-dir", "ev"], 2, ("../../x",)),
    # --- files that cannot be read
    Case("config-not-utf8", lambda c: [*TRAIN, "--config", str(_write(c.ws / "p.yaml", b"name: caf\xe9\n")),
                                       "--runs-dir", "runs"], 2, ("p.yaml", "UTF-8"), True),
    Case("config-alias-loop", lambda c: [*TRAIN, "--config", str(_write(c.ws / "p.yaml", "trunk: &t {name: *t}\n")),
                                         "--runs-dir", "runs"], 2, ("p.yaml", "self-referencing"), True),
    Case("validate-alias-loop", lambda c: ["validate", str(_write(c.ws / "p.yaml", "description: &d [*d]\n"))], 2,
         ("p.yaml", "self-referencing")),
    Case("config-missing", lambda c: [*TRAIN, "--config", "nope.yaml", "--runs-dir", "runs"], 2, ("nope.yaml",), True),
    Case("config-bad-yaml", lambda c: ["validate", str(_write(c.ws / "p.yaml", "trunk: [unclosed\n"))], 2,
         ("p.yaml", "YAML")),
    Case("gzip-corrupt-body", _gz_corrupt, 2, ("tatoeba.kaz-eng",)),
    Case("gzip-truncated", lambda c: [*_gz_corrupt(c)[:-2], "--data-dir",
                                      str(_write(c.ws / "d2" / "tatoeba.kaz-eng.kaz.gz",
                                                 gzip.compress(b"Salem\n" * 50)[:30]).parent)], 2,
         ("tatoeba.kaz-eng.kaz.gz",)),
    Case("data-dir-missing", lambda c: [*EVAL_TRUNK[:3], "--task", "tatoeba", "--languages", "kaz", "--data-dir", "nodata"], 2,
         ("nodata",)),
    # --- compare: damaged finished runs are named, never dropped or doubled
    Case("compare-torn-line", _damaged(lambda c, r: _edit_lines(r / "metrics.jsonl", lambda ls: [*ls[:-1], ls[-1][:25]])),
         2, ("metrics.jsonl", "line 3", "not valid JSON")),
    Case("compare-duplicate-other-score",
         _damaged(lambda c, r: _edit_lines(r / "metrics.jsonl",
                                           lambda ls: [*ls, json.dumps({**json.loads(ls[0]), "score": 100.0})])),
         2, ("metrics.jsonl", "lines 1 and 4", "twice")),
    Case("compare-duplicate-same-line", _damaged(lambda c, r: _edit_lines(r / "metrics.jsonl", lambda ls: [*ls, ls[0]])),
         2, ("metrics.jsonl", "twice")),
    Case("compare-score-edited",
         _damaged(lambda c, r: _edit_lines(r / "metrics.jsonl",
                                           lambda ls: [json.dumps({**json.loads(ls[0]), "score": 99.0}), *ls[1:]])),
         2, ("metrics.jsonl", "differs", "DONE")),
    Case("compare-row-dropped", _damaged(lambda c, r: _edit_lines(r / "metrics.jsonl", lambda ls: ls[1:])), 2,
         ("2 rows", "finished with 3")),
    Case("compare-predictions-edited", _damaged(lambda c, r: _flip_predictions(r)), 2,
         ("predictions differ", r"test-")),
    Case("compare-predictions-resealed", _damaged(lambda c, r: (_flip_predictions(r), _reseal(r))), 2,
         ("predictions for xnli", "records accuracy")),
    Case("compare-metrics-missing", _damaged(lambda c, r: (r / "metrics.jsonl").unlink()), 2,
         ("no metrics.jsonl", "vqa-xnli-s1")),
    Case("compare-score-not-number",
         _damaged(lambda c, r: (_edit_lines(r / "metrics.jsonl",
                                            lambda ls: [json.dumps({**json.loads(ls[0]), "score": "high"}), *ls[1:]]))),
         2, ("score 'high' is not a number",)),
    Case("compare-metrics-not-utf8", _damaged(lambda c, r: _write(r / "metrics.jsonl", b'{"task": "xnli\xff"}\n')), 2,
         ("metrics.jsonl", "UTF-8")),
    Case("compare-config-corrupt", _damaged(lambda c, r: _write(r / "config.yaml", "arm: [unclosed\n")), 2,
         ("config.yaml", "YAML")),
    Case("compare-env-corrupt", _damaged(lambda c, r: _write(r / "env.json", "{not json")), 2, ("env.json", "JSON")),
    Case("compare-done-corrupt", _damaged(lambda c, r: _write(r / "DONE", "{")), 2, ("DONE", "JSON")),
    Case("compare-done-unsealed", _damaged(lambda c, r: _format0_done(r, keep_format=True)), 2,
         ("DONE", "records no metrics_sha256, predictions_sha256", "damaged")),
    # --- a run folder of an older format: its format named, and what to do
    Case("compare-run-of-format-0", _damaged(lambda c, r: _format0_done(r)), 2,
         ("vqa-xnli-s1", "run folder of format 0", "no run_format", "reads format 1 only", "fresh folder", "delete")),
    Case("rescore-run-of-format-0", _rescore_with(_format0_done), 2, ("run folder of format 0", "delete"),
         check=_metrics_unchanged),
    Case("train-over-run-of-format-0", lambda c: (_format0_done(c.run()), [*TRAIN, "--runs-dir", "runs"])[1], 2,
         ("run folder of format 0", "fresh folder")),
    Case("compare-symlinked-baseline", _symlinked_baseline, 0, ("Intermediate training itself",), stream="out"),
    Case("compare-out-under-file", lambda c: [*_compare(c)[:-4], "--out", str(_file(c) / "rep")], 2,
         ("--out", "is a file")),
    Case("compare-out-is-file", lambda c: [*_compare(c)[:-4], "--out", str(_file(c))], 2, ("--out", "not a folder")),
    Case("compare-runs-missing", lambda c: ["compare", "--suite", _suite(c), "--runs", "nowhere"], 2, ("nowhere",)),
    # --- evaluate
    Case("evaluate-out-dir-finished-run", lambda c: [*EVAL_TRUNK, "--out-dir", str(c.run())], 2,
         ("finished run folder", "--run"), check=_metrics_unchanged),
    Case("evaluate-output-under-file", lambda c: [*EVAL_TRUNK, "--output", str(_file(c) / "s.json")], 2,
         ("--output", "is a file")),
    Case("evaluate-output-is-folder", lambda c: [*EVAL_TRUNK, "--output", str(c.ws)], 2, ("--output", "folder")),
    Case("evaluate-out-dir-is-file", lambda c: [*EVAL_TRUNK, "--out-dir", str(_file(c))], 2,
         ("--out-dir", "not a folder")),
    Case("evaluate-out-dir-proc", lambda c: [*EVAL_TRUNK, "--out-dir", "/proc/mmxfer-eval"], 2, ("--out-dir",)),
    Case("rescore-wrong-type", _rescore_with(_strings_as_predictions), 2, ("pred is str", "accuracy")),
    Case("rescore-empty-predictions", _rescore_with(lambda r: _first_predictions(r).write_text("")), 2,
         ("empty predictions file",)),
    Case("rescore-predictions-not-utf8", _rescore_with(lambda r: _first_predictions(r).write_bytes(b"\xff\xfe{}\n")),
         2, ("UTF-8", ".jsonl")),
    Case("rescore-metrics-not-utf8", _rescore_with(lambda r: (r / "metrics.jsonl").write_bytes(b"\xff\n")), 2,
         ("metrics.jsonl", "UTF-8")),
    Case("rescore-missing-run", lambda c: ["evaluate", "--rescore", "no-such-run"], 2, ("no-such-run",)),
    Case("evaluate-run-unfinished", lambda c: ["evaluate", "--run", str(_write(c.ws / "r" / "config.yaml", "{}\n")
                                                                        .parent)], 2, ("not finished",)),
    # --- train: output paths, folders in use, checkpoints that would run code
    Case("runs-dir-under-file", lambda c: [*TRAIN, "--runs-dir", str(_file(c) / "runs")], 2, ("--runs-dir", "is a file")),
    Case("runs-dir-is-file", lambda c: [*TRAIN, "--runs-dir", str(_file(c))], 2, ("--runs-dir", "not a folder")),
    Case("runs-dir-proc", lambda c: [*TRAIN, "--runs-dir", "/proc/mmxfer-runs"], 2, ("--runs-dir",)),
    Case("study-runs-dir-under-file", lambda c: ["study", _mini_study(c), "--runs-dir", str(_file(c) / "r")], 2,
         ("--runs-dir",)),
    Case("embed-output-is-folder", lambda c: ["embed", "--trunk", "tiny", "--input", str(_write(c.ws / "in.txt", "a\n")),
                                              "--output", str(_mkdir(c.ws / "emb.npy"))], 2, ("--output", "folder")),
    Case("force-symlinked-run", _symlinked_run, 2, ("symbolic link",)),
    Case("run-in-use", _locked_run, 2, ("in use by pid", "mmxfer train")),
    Case("run-stale-lock", _stale_lock, 0, ("done:",), stream="out"),
    Case("unfinished-without-resume", lambda c: (c.unfinished(), [*TRAIN, "--runs-dir", "runs"])[1], 2,
         ("--resume",)),
    Case("malicious-scheduler", lambda c: _plant_checkpoint(c, "scheduler.pt"), 2, ("scheduler.pt", "refused"),
         check=_not_pwned),
    Case("malicious-optimizer", lambda c: _plant_checkpoint(c, "optimizer.bin"), 2, ("optimizer.bin", "refused"),
         check=_not_pwned),
    Case("malicious-rng-state", lambda c: _plant_checkpoint(c, "random_states_0.pkl"), 2,
         ("random_states_0.pkl", "refused"), check=_not_pwned),
    Case("malicious-custom-object", lambda c: _plant_checkpoint(c, "custom_checkpoint_0.pkl"), 2,
         ("custom_checkpoint_0.pkl",), check=_not_pwned),
    # --- listing
    Case("ls-runs-missing-dir", lambda c: ["ls", "runs", "--runs-dir", "/nonexistent"], 2, ("/nonexistent",)),
    Case("unknown-study", lambda c: ["study", "papr", "--dry-run"], 2, ("unknown study", "paper")),
]


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    assert main([*TRAIN, "--runs-dir", str(root / "runs")]) == 0
    (finished,) = [p for p in (root / "runs" / "starter").iterdir() if not p.name.startswith("_")]
    real_save = loop._save_checkpoint

    def save_then_die(*args, **kwargs):
        raise Killed(real_save(*args, **kwargs))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "_save_checkpoint", save_then_die)
        with pytest.raises(Killed):
            main([*TRAIN, "--runs-dir", str(root / "killed")])
    killed = root / "killed" / "starter" / finished.name
    arms = [SynthArm("baseline", (), "none"), SynthArm("mnli", ("mnli",), "text", 2.0),
            SynthArm("vqa", ("vqa",), "image-text", 5.0)]
    make_study(root / "syn", arms, [SynthTask("xnli", "classification", ("en", "de", "sw"), 60)], [1])
    return finished, root / "syn", killed


RESULTS: dict[str, str] = {}  # case id -> "" when handled cleanly, else what went wrong


def _replay(case: Case, ctx: Ctx, capsys) -> str:
    """'' when the case is handled cleanly, else what went wrong."""
    try:
        argv = case.argv(ctx)
        capsys.readouterr()
        code = main(argv)
    except BaseException as exc:  # noqa: BLE001 - a traceback is exactly what is being counted
        return f"raised {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    finally:
        sleeper = ctx.ws / ".sleeper"
        if sleeper.is_file():
            with contextlib.suppress(OSError):
                pid = int(sleeper.read_text())
                os.kill(pid, 9)
                os.waitpid(pid, 0)
    out, err = capsys.readouterr()
    problems = []
    if code != case.code:
        problems.append(f"exit {code}, expected {case.code}")
    if "Traceback" in err:
        problems.append("traceback on stderr")
    if case.stream == "err":
        lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("mmxfer ")]
        if len(lines) != 1:
            problems.append(f"{len(lines)} error lines")
        text = lines[0] if lines else err
    else:
        text = out
    missing = [w for w in case.words if w not in text]
    if missing:
        problems.append(f"missing {missing} in {text.strip()[-300:]!r}")
    if case.no_run_folder and (ctx.ws / "runs").exists():
        problems.append("a run folder was made")
    if case.check is not None:
        try:
            case.check(ctx)
        except AssertionError as exc:
            problems.append(str(exc) or "check failed")
    return "; ".join(problems)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(case, fixtures, tmp_path, monkeypatch, capsys):
    finished, synthetic, killed = fixtures
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path.parent / "replay-cache"))
    monkeypatch.delenv("MMXFER_DEBUG", raising=False)
    problem = _replay(case, Ctx(tmp_path, finished, synthetic, killed), capsys)
    RESULTS[case.id] = problem
    assert not problem, problem


def test_replay_count():
    """The honest count: every case of the table tried, how many handled cleanly."""
    if len(RESULTS) < len(CASES):
        pytest.skip("run with the whole table")
    clean = sum(1 for p in RESULTS.values() if not p)
    print(f"\nbad inputs replayed: {len(RESULTS)}, handled cleanly: {clean}")
    assert clean == len(CASES)


def test_cases_have_unique_ids():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))

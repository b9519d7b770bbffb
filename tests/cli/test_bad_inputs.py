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
import logging
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

TINY = [
    "--set",
    "trunk.name=tiny",
    "--set",
    "trunk.freeze_embeddings=false",
    "--set",
    "target.max_train_examples=16",
    "--set",
    "target.batch_size=8",
    "--set",
    "target.epochs=1",
    "--set",
    "target.max_eval_examples=8",
    "--set",
    "target.checkpoint_every=1",
]
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
        return next(
            p
            for p in sorted((self.study() / "synthetic").iterdir())
            if p.name.startswith(f"{arm}-xnli-s{seed}")
        )


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], list[str]]
    code: int
    words: tuple[str, ...]
    no_run_folder: bool = False  # the runs folder must not exist afterwards
    check: Callable[[Ctx], None] | None = None  # more to assert afterwards
    stream: str = (
        "err"  # where the words are: "err" (the error line) or "out" (a successful command)
    )
    logged: tuple[
        str, ...
    ] = ()  # words of the one warning a recomputation logs (its first word names what)


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


def _yaml(ctx: Ctx, name: str, data: object) -> str:
    return str(_write(ctx.ws / name, yaml.safe_dump(data)))


def _mini_study(ctx: Ctx, **changes: object) -> str:
    data = {
        "name": "mini",
        "profile": "starter",
        "arms": [{"name": "baseline", "intermediate": []}],
        "targets": ["starter-names"],
        "seeds": [1],
        "overrides": ["trunk.name=tiny"],
        **changes,
    }
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
    (run / "LOCK").write_text(
        json.dumps(
            {
                "pid": pid,
                "host": os.uname().nodename,
                "started": "earlier",
                "command": "mmxfer train",
                "token": "t",
            }
        )
    )
    return [*TRAIN, "--runs-dir", "runs", "--resume"]


def _stale_lock(ctx: Ctx) -> list[str]:
    """The killed run, its LOCK left by a process that is gone (kill -9 leaves exactly this)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (ctx.unfinished() / "LOCK").write_text(
        json.dumps(
            {
                "pid": proc.pid,
                "host": os.uname().nodename,
                "command": "mmxfer train",
                "token": "gone",
            }
        )
    )
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
    return [
        "compare",
        "--suite",
        _suite(ctx),
        "--runs",
        str(study),
        "--out",
        "rep",
        "--bootstrap",
        "50",
    ]


def _suite(ctx: Ctx) -> str:
    return str(_write(ctx.ws / "synth.yaml", "name: synth\ntasks:\n  - task: xnli\n"))


def _compare(ctx: Ctx) -> list[str]:
    return [
        "compare",
        "--suite",
        _suite(ctx),
        "--runs",
        str(ctx.study() / "synthetic"),
        "--out",
        "rep",
        "--bootstrap",
        "50",
    ]


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
    return [
        "evaluate",
        "--trunk",
        "tiny",
        "--task",
        "tatoeba",
        "--languages",
        "kaz",
        "--data-dir",
        "data",
    ]


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


# --------------------------------------------------------------------------- release files (round 3)

SHIPPED_SIB = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "mmxfer"
    / "resources"
    / "sib200"
    / "data"
    / "annotated"
)
TRAIN_TINY = [
    "train",
    "--intermediate",
    "none",
    "--seed",
    "1",
    *TINY,
    "--set",
    "target.max_steps=2",
]


def _sib_dir(
    ctx: Ctx, edit: Callable[[list[str]], list[str]] | None = None, split: str = "train"
) -> str:
    """SIB-200 release files (English train and dev, German test) copied from the shipped excerpt, ``edit``
    applied to the lines of ``split`` (English train, or German test)."""
    root = ctx.ws / "sib"
    for lang, name in (("eng_Latn", "train"), ("eng_Latn", "dev"), ("deu_Latn", "test")):
        lines = (
            gzip.decompress((SHIPPED_SIB / lang / f"{name}.tsv.gz").read_bytes())
            .decode()
            .splitlines()
        )
        if edit is not None and name == split:
            lines = edit(lines)
        _write(root / lang / f"{name}.tsv", "\n".join(lines) + "\n")
    return str(root)


def _sib(
    edit: Callable[[list[str]], list[str]], split: str = "train"
) -> Callable[[Ctx], list[str]]:
    return lambda c: [
        *TRAIN_TINY,
        "--target",
        "sib200",
        "--languages",
        "deu_Latn",
        "--data-dir",
        _sib_dir(c, edit, split),
        "--runs-dir",
        "runs",
    ]


def _cut_field(lines: list[str], n: int = 5) -> list[str]:
    return [*lines[:n], "\t".join(lines[n].split("\t")[:2]), *lines[n + 1 :]]


CONLLU = """# sent_id = s1
# text = The cat sleeps .
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tcat\tcat\tNOUN\tNN\t_\t3\tnsubj\t_\t_
3\tsleeps\tsleep\tVERB\tVBZ\t_\t0\troot\t_\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = s2
1\tDogs\tdog\tNOUN\tNNS\t_\t2\tnsubj\t_\t_
2\tbark\tbark\tVERB\tVBP\t_\t0\troot\t_\t_

"""


def _ud(edit: Callable[[str], str]) -> Callable[[Ctx], list[str]]:
    def argv(ctx: Ctx) -> list[str]:
        _write(ctx.ws / "ud" / "en_toy-ud-train.conllu", edit(CONLLU))
        _write(ctx.ws / "ud" / "en_toy-ud-dev.conllu", CONLLU)
        _write(ctx.ws / "ud" / "de_toy-ud-test.conllu", CONLLU)
        return [
            *TRAIN_TINY,
            "--target",
            "udpos",
            "--languages",
            "de",
            "--data-dir",
            str(ctx.ws / "ud"),
            "--runs-dir",
            "runs",
        ]

    return argv


def _squad_json(n: int, bad: Callable[[int, str], dict[str, object]] | None = None) -> str:
    """SQuAD v1.1 JSON of ``n`` one-sentence paragraphs; ``bad(i, context)`` replaces question i's answer."""
    paragraphs = []
    for i in range(n):
        context = f"Item {i} of the list was made in the town of Place{i} in the year {1900 + i}."
        answer = {"text": f"Place{i}", "answer_start": context.index(f"Place{i}")}
        if bad is not None and bad(i, context):
            answer = bad(i, context)
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {"id": f"q{i}", "question": f"Where was item {i} made?", "answers": [answer]}
                ],
            }
        )
    return json.dumps({"version": "1.1", "data": [{"title": "toy", "paragraphs": paragraphs}]})


def _squad(
    bad: Callable[[int, str], dict[str, object]] | None, *, test: str | None = None
) -> Callable[[Ctx], list[str]]:
    def argv(ctx: Ctx) -> list[str]:
        _write(ctx.ws / "qa" / "train-v1.1.json", _squad_json(12, bad))
        _write(ctx.ws / "qa" / "xquad.de.json", test if test is not None else _squad_json(4))
        return [
            *TRAIN_TINY,
            "--target",
            "xquad",
            "--languages",
            "de",
            "--data-dir",
            str(ctx.ws / "qa"),
            "--runs-dir",
            "runs",
        ]

    return argv


def _beyond(i: int, context: str) -> dict[str, object] | None:
    return {"text": f"Place{i}", "answer_start": len(context) + 40} if i % 4 == 0 else None


def _skipped_counted(ctx: Ctx) -> None:
    (run,) = (ctx.ws / "runs" / "starter").iterdir()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(r.get("train_skipped") == 3 for r in rows), rows
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["skipped"] for r in log if r.get("event") == "skipped_training_examples"] == [3], log


def _pawsx(edit: Callable[[list[str]], list[str]]) -> Callable[[Ctx], list[str]]:
    def argv(ctx: Ctx) -> list[str]:
        lines = ["id\tsentence1\tsentence2\tlabel"] + [
            f"{i}\tA sentence {i}.\tAnother sentence {i}.\t{i % 2}" for i in range(1, 21)
        ]
        for lang, name in (("en", "train"), ("en", "dev_2k"), ("de", "test_2k")):
            _write(
                ctx.ws / "px" / lang / f"{name}.tsv",
                "\n".join(edit(lines) if lang == "de" else lines) + "\n",
            )
        return [
            *TRAIN_TINY,
            "--target",
            "pawsx",
            "--languages",
            "de",
            "--data-dir",
            str(ctx.ws / "px"),
            "--runs-dir",
            "runs",
        ]

    return argv


def _tatoeba_long(ctx: Ctx) -> list[str]:
    _write(ctx.ws / "tt" / "tatoeba.kaz-eng.kaz", "Salem\n" + "x" * 200_000 + "\n")
    _write(ctx.ws / "tt" / "tatoeba.kaz-eng.eng", "Hello\nGoodbye\n")
    return [
        *EVAL_TRUNK[:3],
        "--task",
        "tatoeba",
        "--languages",
        "kaz",
        "--data-dir",
        str(ctx.ws / "tt"),
    ]


def _bucc_duplicate(ctx: Ctx) -> list[str]:
    folder = ctx.ws / "bucc" / "bucc2018" / "de-en"
    # dev (the threshold) and test files, the same repeated id in both
    for name in (
        "sample",
        "training",
    ):
        _write(
            folder / f"de-en.{name}.de", "de-1\tHallo Welt\nde-2\tGuten Tag\nde-1\tNoch einmal\n"
        )
        _write(folder / f"de-en.{name}.en", "en-1\tHello world\nen-2\tGood day\n")
        _write(folder / f"de-en.{name}.gold", "de-1\ten-1\nde-2\ten-2\n")
    return [
        *EVAL_TRUNK[:3],
        "--task",
        "bucc",
        "--languages",
        "de",
        "--data-dir",
        str(ctx.ws / "bucc"),
    ]


HELLASWAG = {
    "ind": 1,
    "ctx_a": "A man sits",
    "ctx_b": "then he",
    "endings": ["stands", "runs", "eats", "sleeps"],
    "label": 0,
}


def _intermediate(task: str, files: dict[str, str]) -> Callable[[Ctx], list[str]]:
    """Phase 2 on ``task``'s release files ``files`` (name -> text) in a data folder, before the tiny target."""

    def argv(ctx: Ctx) -> list[str]:
        for name, text in files.items():
            _write(ctx.ws / "inter" / name, text)
        return [
            "train",
            "--intermediate",
            task,
            "--target",
            "starter-names",
            "--seed",
            "1",
            *TINY,
            "--set",
            "intermediate.max_train_examples=16",
            "--data-dir",
            str(ctx.ws / "inter"),
            "--runs-dir",
            "runs",
        ]

    return argv


# --------------------------------------------------------------------------- YAML bombs, embed input, the cache


def _laughs(levels: int = 9, prefix: str = "") -> str:
    lines = [f'{prefix}a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnop"
    for i in range(1, levels):
        lines.append(
            f"{prefix}{names[i]}: &{names[i]} [" + ", ".join([f"*{names[i - 1]}"] * 9) + "]"
        )
    return "\n".join(lines) + "\n"


def _bomb_study(ctx: Ctx) -> list[str]:
    text = (
        "name: mini\nprofile: starter\nseeds: [1]\ntargets: [starter-names]\narms:\n  - name: b\n    "
        "intermediate: []\nextra_notes:\n" + _laughs(prefix="  ")
    )
    return ["study", str(_write(ctx.ws / "bomb-study.yaml", text)), "--runs-dir", "runs"]


def _embed(text: str | bytes, trunk: str = "tiny") -> Callable[[Ctx], list[str]]:
    return lambda c: [
        "embed",
        "--trunk",
        trunk,
        "--input",
        str(_write(c.ws / "in.txt", text)),
        "--output",
        str(c.ws / "e.npy"),
    ]


def _rows(n: int) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        import numpy as np

        emb = np.load(ctx.ws / "e.npy")
        assert emb.shape[0] == n and np.isfinite(emb).all(), emb.shape

    return check


def _truncated_like_others(ctx: Ctx) -> None:
    """The 100,000-character line's row is the embedding of its first tokens: the same as of a line cut to them."""
    import numpy as np

    from mmxfer.models import load_trunk
    from mmxfer.models.embed import encode

    emb = np.load(ctx.ws / "e.npy")
    model, tokenizer = load_trunk("tiny")
    cut = encode(model, tokenizer, ["word " * 1000], progress=False, precision="auto")
    assert np.allclose(emb[1], cut[0], atol=1e-4)


def _cache_at(path: str | Path) -> Callable[[Ctx], list[str]]:
    def argv(ctx: Ctx) -> list[str]:
        # the test's monkeypatch puts it back
        os.environ["MMXFER_CACHE"] = str(path).format(ws=ctx.ws)
        return [*TRAIN, "--runs-dir", "runs"]

    return argv


# --------------------------------------------------------------------------- damaged derived files (second family)

#: a run whose train (300 rows) and test (204 rows) features are large enough to be cached; it trains long enough
#: for its training labels to show in its score (one epoch at the default rate predicts one class whatever the labels),
#: so "the same metrics as the clean run" says that a damaged entry was not used
SIB_CACHED = [
    "train",
    "--intermediate",
    "none",
    "--target",
    "starter-sib200",
    "--languages",
    "deu_Latn",
    "--seed",
    "1",
    "--set",
    "trunk.name=tiny",
    "--set",
    "trunk.freeze_embeddings=false",
    "--set",
    "target.max_train_examples=300",
    "--set",
    "target.batch_size=32",
    "--set",
    "target.epochs=2",
    "--set",
    "target.lr=3e-3",
    "--set",
    "target.max_eval_examples=8",
]
#: a retrieval-only run on a phase-2 trunk (shapes-world VQA text twin)
PHASE2 = [
    "train",
    "--intermediate",
    "starter-vqa-text",
    "--seed",
    "1",
    "--languages",
    "de",
    "--set",
    "trunk.name=tiny",
    "--set",
    "trunk.freeze_embeddings=false",
    "--set",
    "intermediate.max_train_examples=16",
    "--set",
    "intermediate.batch_size=8",
    "--set",
    "intermediate.epochs=1",
    "--set",
    "intermediate.max_eval_examples=8",
]

_DERIVED: dict[
    str, Path
] = {}  # made on first use (in the module's replay folder), shared by the cases


def _derived(ctx: Ctx, name: str) -> Path:
    """``sib``: the clean SIB run's runs folder and its cache (``<root>/sib``, ``<root>/sib-cache``); ``phase2``: a
    finished phase-2 study folder (``<root>/p2``)."""
    root = ctx.finished.parents[2]
    if name not in _DERIVED:
        with pytest.MonkeyPatch.context() as patch:
            if name == "sib":
                patch.setenv("MMXFER_CACHE", str(root / "sib-cache"))
                assert main([*SIB_CACHED, "--runs-dir", str(root / "sib")]) == 0
            else:
                assert main([*PHASE2, "--runs-dir", str(root / "p2")]) == 0
        _DERIVED[name] = root
    return _DERIVED[name]


def _scores(runs: Path) -> list[tuple[str, float]]:
    (run,) = [p for p in (runs / "starter").iterdir() if not p.name.startswith("_")]
    return [
        (r["lang"], r["score"])
        for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    ]


def _train_entry(cache: Path) -> Path:
    """The feature-cache entry of the 300 training rows."""
    entries = [
        p for p in (cache / "features" / "starter-sib200").iterdir() if (p / "DONE").is_file()
    ]
    return next(p for p in entries if json.loads((p / "DONE").read_text()).get("rows") == 300)


def _arrow(entry: Path) -> Path:
    return next(entry.glob("*.arrow"))


def _rewrite(entry: Path, change: Callable[[dict], dict]) -> None:
    """Save the entry again with each row changed, keeping its old DONE (what a tool that edits the cache does)."""
    import datasets

    done = (entry / "DONE").read_bytes()
    changed = datasets.load_from_disk(str(entry)).map(change, keep_in_memory=True)
    copy = entry.with_name(entry.name + "-rewritten")
    changed.save_to_disk(str(copy))
    shutil.rmtree(entry)
    copy.rename(entry)
    (entry / "DONE").write_bytes(done)


def _flip(path: Path, every: int = 0) -> None:
    """64 bytes in the middle inverted; ``every``: also one byte in ``every`` from the middle on (the damage then
    reaches weights that any input reads)."""
    data = bytearray(path.read_bytes())
    for i in [
        *range(len(data) // 2, len(data) // 2 + 64),
        *(range(len(data) // 2, len(data), every) if every else ()),
    ]:
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _damaged_cache(damage: Callable[[Path], None]) -> Callable[[Ctx], list[str]]:
    """The SIB run again on a copy of its cache whose training entry ``damage`` changed."""

    def argv(ctx: Ctx) -> list[str]:
        root = _derived(ctx, "sib")
        shutil.copytree(root / "sib-cache", ctx.ws / "cache")
        damage(_train_entry(ctx.ws / "cache"))
        os.environ["MMXFER_CACHE"] = str(ctx.ws / "cache")  # the test's monkeypatch puts it back
        return [*SIB_CACHED, "--runs-dir", "runs"]

    return argv


def _recomputed(ctx: Ctx) -> None:
    """The run scored as the clean one did, and the training entry is whole again."""
    assert _scores(ctx.ws / "runs") == _scores(_derived(ctx, "sib") / "sib"), (
        "metrics differ from the clean run"
    )
    from mmxfer.runs import sealed

    sealed.check(_train_entry(ctx.ws / "cache"))


def _tiny_trunk_damaged(damage: Callable[[Path], None]) -> Callable[[Ctx], list[str]]:
    """``mmxfer embed`` with the saved tiny trunk of a fresh cache, after a clean embedding, its folder damaged."""

    def argv(ctx: Ctx) -> list[str]:
        from mmxfer.testing.saved import tiny_trunk_dir

        os.environ["MMXFER_CACHE"] = str(ctx.ws / "cache")  # the test's monkeypatch puts it back
        text = str(_write(ctx.ws / "in.txt", "Hello world\nGuten Tag\n"))
        assert (
            main(
                [
                    "embed",
                    "--trunk",
                    "rehearsal-xlmr",
                    "--input",
                    text,
                    "--output",
                    str(ctx.ws / "clean.npy"),
                ]
            )
            == 0
        )
        damage(tiny_trunk_dir())
        return [
            "embed",
            "--trunk",
            "rehearsal-xlmr",
            "--input",
            text,
            "--output",
            str(ctx.ws / "e.npy"),
        ]

    return argv


def _same_embeddings(ctx: Ctx) -> None:
    import numpy as np

    assert np.array_equal(np.load(ctx.ws / "e.npy"), np.load(ctx.ws / "clean.npy")), (
        "embeddings differ"
    )


def _damaged_phase2(
    damage: Callable[[Path], None], argv_of: Callable[[Path], list[str]] | None = None
) -> Callable[[Ctx], list[str]]:
    """A copy of the finished phase-2 study, its phase-2 folder damaged, then the same run again (``--force``), or
    ``argv_of(phase-2 folder)``."""

    def argv(ctx: Ctx) -> list[str]:
        shutil.copytree(_derived(ctx, "phase2") / "p2", ctx.ws / "p2")
        (folder,) = (ctx.ws / "p2" / "starter" / "_intermediate").iterdir()
        damage(folder)
        return argv_of(folder) if argv_of else [*PHASE2, "--runs-dir", "p2", "--force"]

    return argv


CASES: list[Case] = [
    # --- values that make wrong runs: one line naming the key, before any run folder exists
    Case(
        "seed-negative",
        lambda c: [*TRAIN, "--seed", "-1", "--runs-dir", "runs"],
        2,
        ("--seed", "-1"),
        True,
    ),
    Case(
        "seed-too-big",
        lambda c: [*TRAIN, "--seed", str(2**32), "--runs-dir", "runs"],
        2,
        ("--seed",),
        True,
    ),
    Case(
        "lr-nan",
        lambda c: [*TRAIN, "--set", "target.lr=nan", "--runs-dir", "runs"],
        2,
        ("target.lr", "nan"),
        True,
    ),
    Case(
        "lr-inf",
        lambda c: [*TRAIN, "--set", "target.lr=inf", "--runs-dir", "runs"],
        2,
        ("target.lr",),
        True,
    ),
    Case(
        "lr-zero",
        lambda c: [*TRAIN, "--set", "target.lr=0", "--runs-dir", "runs"],
        2,
        ("target.lr",),
        True,
    ),
    Case(
        "lr-negative",
        lambda c: [*TRAIN, "--set", "intermediate.lr=-1e-5", "--runs-dir", "runs"],
        2,
        ("intermediate.lr",),
        True,
    ),
    Case(
        "epochs-zero",
        lambda c: [*TRAIN, "--set", "target.epochs=0", "--runs-dir", "runs"],
        2,
        ("target.epochs",),
        True,
    ),
    Case(
        "epochs-negative",
        lambda c: [*TRAIN, "--set", "target.epochs=-2", "--runs-dir", "runs"],
        2,
        ("target.epochs",),
        True,
    ),
    Case(
        "retrieval-k-zero",
        lambda c: [*TRAIN, "--set", "retrieval.k=0", "--runs-dir", "runs"],
        2,
        ("retrieval.k",),
        True,
    ),
    Case(
        "max-length-negative",
        lambda c: [*TRAIN, "--set", "trunk.max_length=-5", "--runs-dir", "runs"],
        2,
        ("trunk.max_length", "-5"),
        True,
    ),
    Case(
        "batch-size-zero",
        lambda c: [*TRAIN, "--set", "target.batch_size=0", "--runs-dir", "runs"],
        2,
        ("target.batch_size",),
        True,
    ),
    Case(
        "warmup-above-one",
        lambda c: [*TRAIN, "--set", "target.warmup_ratio=1.5", "--runs-dir", "runs"],
        2,
        ("target.warmup_ratio",),
        True,
    ),
    Case(
        "target-override-epochs-zero",
        lambda c: [
            *TRAIN,
            "--set",
            "target_overrides.starter-names.epochs=0",
            "--runs-dir",
            "runs",
        ],
        2,
        ("target_overrides.starter-names.epochs",),
        True,
    ),
    Case(
        "validate-seed-negative",
        lambda c: ["validate", "starter", "--set", "seed=-1"],
        2,
        ("seed", "-1"),
    ),
    Case(
        "study-seed-negative",
        lambda c: ["study", _mini_study(c, seeds=[-1]), "--dry-run"],
        2,
        ("seeds[0]",),
    ),
    Case(
        "config-typo",
        lambda c: [*TRAIN, "--set", "target.lrr=1e-5", "--runs-dir", "runs"],
        2,
        ("target.lrr", "did you mean lr"),
        True,
    ),
    Case(
        "unknown-target",
        lambda c: ["train", "--target", "xnlii", "--runs-dir", "runs"],
        2,
        ("xnlii",),
        True,
    ),
    # --- names that become paths
    Case(
        "study-dotdot",
        lambda c: [*TRAIN, "--study", "..", "--runs-dir", "runs"],
        2,
        ("study", "'..'"),
        True,
    ),
    Case(
        "study-slash",
        lambda c: [*TRAIN, "--study", "a/../../b", "--runs-dir", "runs"],
        2,
        ("study",),
        True,
    ),
    Case(
        "study-empty",
        lambda c: [*TRAIN, "--set", "study=", "--runs-dir", "runs"],
        2,
        ("study", "empty"),
        True,
    ),
    Case(
        "arm-traversal",
        lambda c: [*TRAIN, "--arm", "../../x", "--runs-dir", "runs"],
        2,
        ("arm",),
        True,
    ),
    Case(
        "study-file-arm-traversal",
        lambda c: [
            "study",
            _mini_study(c, arms=[{"name": "../evil", "intermediate": []}]),
            "--runs-dir",
            "runs",
        ],
        2,
        ("arm", "../evil"),
        True,
    ),
    Case(
        "study-file-name-dotdot",
        lambda c: ["study", _mini_study(c, name=".."), "--runs-dir", "runs"],
        2,
        ("study",),
        True,
    ),
    Case(
        "language-traversal",
        lambda c: [*EVAL_TRUNK[:-1], "../../x", "--out-dir", "ev"],
        2,
        ("../../x",),
    ),
    # --- files that cannot be read
    Case(
        "config-not-utf8",
        lambda c: [
            *TRAIN,
            "--config",
            str(_write(c.ws / "p.yaml", b"name: caf\xe9\n")),
            "--runs-dir",
            "runs",
        ],
        2,
        ("p.yaml", "UTF-8"),
        True,
    ),
    Case(
        "config-alias-loop",
        lambda c: [
            *TRAIN,
            "--config",
            str(_write(c.ws / "p.yaml", "trunk: &t {name: *t}\n")),
            "--runs-dir",
            "runs",
        ],
        2,
        ("p.yaml", "self-referencing"),
        True,
    ),
    Case(
        "validate-alias-loop",
        lambda c: ["validate", str(_write(c.ws / "p.yaml", "description: &d [*d]\n"))],
        2,
        ("p.yaml", "self-referencing"),
    ),
    Case(
        "config-missing",
        lambda c: [*TRAIN, "--config", "nope.yaml", "--runs-dir", "runs"],
        2,
        ("nope.yaml",),
        True,
    ),
    Case(
        "config-bad-yaml",
        lambda c: ["validate", str(_write(c.ws / "p.yaml", "trunk: [unclosed\n"))],
        2,
        ("p.yaml", "YAML"),
    ),
    Case("gzip-corrupt-body", _gz_corrupt, 2, ("tatoeba.kaz-eng",)),
    Case(
        "gzip-truncated",
        lambda c: [
            *_gz_corrupt(c)[:-2],
            "--data-dir",
            str(
                _write(
                    c.ws / "d2" / "tatoeba.kaz-eng.kaz.gz", gzip.compress(b"Salem\n" * 50)[:30]
                ).parent
            ),
        ],
        2,
        ("tatoeba.kaz-eng.kaz.gz",),
    ),
    Case(
        "data-dir-missing",
        lambda c: [
            *EVAL_TRUNK[:3],
            "--task",
            "tatoeba",
            "--languages",
            "kaz",
            "--data-dir",
            "nodata",
        ],
        2,
        ("nodata",),
    ),
    # --- compare: damaged finished runs are named, never dropped or doubled
    Case(
        "compare-torn-line",
        _damaged(lambda c, r: _edit_lines(r / "metrics.jsonl", lambda ls: [*ls[:-1], ls[-1][:25]])),
        2,
        ("metrics.jsonl", "line 3", "not valid JSON"),
    ),
    Case(
        "compare-duplicate-other-score",
        _damaged(
            lambda c, r: _edit_lines(
                r / "metrics.jsonl",
                lambda ls: [*ls, json.dumps({**json.loads(ls[0]), "score": 100.0})],
            )
        ),
        2,
        ("metrics.jsonl", "lines 1 and 4", "twice"),
    ),
    Case(
        "compare-duplicate-same-line",
        _damaged(lambda c, r: _edit_lines(r / "metrics.jsonl", lambda ls: [*ls, ls[0]])),
        2,
        ("metrics.jsonl", "twice"),
    ),
    Case(
        "compare-score-edited",
        _damaged(
            lambda c, r: _edit_lines(
                r / "metrics.jsonl",
                lambda ls: [json.dumps({**json.loads(ls[0]), "score": 99.0}), *ls[1:]],
            )
        ),
        2,
        ("metrics.jsonl", "differs", "DONE"),
    ),
    Case(
        "compare-row-dropped",
        _damaged(lambda c, r: _edit_lines(r / "metrics.jsonl", lambda ls: ls[1:])),
        2,
        ("2 rows", "finished with 3"),
    ),
    Case(
        "compare-predictions-edited",
        _damaged(lambda c, r: _flip_predictions(r)),
        2,
        ("predictions differ", r"test-"),
    ),
    Case(
        "compare-predictions-resealed",
        _damaged(lambda c, r: (_flip_predictions(r), _reseal(r))),
        2,
        ("predictions for xnli", "records accuracy"),
    ),
    Case(
        "compare-metrics-missing",
        _damaged(lambda c, r: (r / "metrics.jsonl").unlink()),
        2,
        ("no metrics.jsonl", "vqa-xnli-s1"),
    ),
    Case(
        "compare-score-not-number",
        _damaged(
            lambda c, r: _edit_lines(
                r / "metrics.jsonl",
                lambda ls: [json.dumps({**json.loads(ls[0]), "score": "high"}), *ls[1:]],
            )
        ),
        2,
        ("score 'high' is not a number",),
    ),
    Case(
        "compare-metrics-not-utf8",
        _damaged(lambda c, r: _write(r / "metrics.jsonl", b'{"task": "xnli\xff"}\n')),
        2,
        ("metrics.jsonl", "UTF-8"),
    ),
    Case(
        "compare-config-corrupt",
        _damaged(lambda c, r: _write(r / "config.yaml", "arm: [unclosed\n")),
        2,
        ("config.yaml", "YAML"),
    ),
    Case(
        "compare-env-corrupt",
        _damaged(lambda c, r: _write(r / "env.json", "{not json")),
        2,
        ("env.json", "JSON"),
    ),
    Case(
        "compare-done-corrupt", _damaged(lambda c, r: _write(r / "DONE", "{")), 2, ("DONE", "JSON")
    ),
    Case(
        "compare-done-unsealed",
        _damaged(lambda c, r: _format0_done(r, keep_format=True)),
        2,
        ("DONE", "records no metrics_sha256, predictions_sha256", "damaged"),
    ),
    # --- a run folder of an older format: its format named, and what to do
    Case(
        "compare-run-of-format-0",
        _damaged(lambda c, r: _format0_done(r)),
        2,
        (
            "vqa-xnli-s1",
            "run folder of format 0",
            "no run_format",
            "reads format 1 only",
            "fresh folder",
            "delete",
        ),
    ),
    Case(
        "rescore-run-of-format-0",
        _rescore_with(_format0_done),
        2,
        ("run folder of format 0", "delete"),
        check=_metrics_unchanged,
    ),
    Case(
        "train-over-run-of-format-0",
        lambda c: (_format0_done(c.run()), [*TRAIN, "--runs-dir", "runs"])[1],
        2,
        ("run folder of format 0", "fresh folder"),
    ),
    Case(
        "compare-symlinked-baseline",
        _symlinked_baseline,
        0,
        ("Intermediate training itself",),
        stream="out",
    ),
    Case(
        "compare-out-under-file",
        lambda c: [*_compare(c)[:-4], "--out", str(_file(c) / "rep")],
        2,
        ("--out", "is a file"),
    ),
    Case(
        "compare-out-is-file",
        lambda c: [*_compare(c)[:-4], "--out", str(_file(c))],
        2,
        ("--out", "not a folder"),
    ),
    Case(
        "compare-runs-missing",
        lambda c: ["compare", "--suite", _suite(c), "--runs", "nowhere"],
        2,
        ("nowhere",),
    ),
    # --- evaluate
    Case(
        "evaluate-out-dir-finished-run",
        lambda c: [*EVAL_TRUNK, "--out-dir", str(c.run())],
        2,
        ("finished run folder", "--run"),
        check=_metrics_unchanged,
    ),
    Case(
        "evaluate-output-under-file",
        lambda c: [*EVAL_TRUNK, "--output", str(_file(c) / "s.json")],
        2,
        ("--output", "is a file"),
    ),
    Case(
        "evaluate-output-is-folder",
        lambda c: [*EVAL_TRUNK, "--output", str(c.ws)],
        2,
        ("--output", "folder"),
    ),
    Case(
        "evaluate-out-dir-is-file",
        lambda c: [*EVAL_TRUNK, "--out-dir", str(_file(c))],
        2,
        ("--out-dir", "not a folder"),
    ),
    Case(
        "evaluate-out-dir-proc",
        lambda c: [*EVAL_TRUNK, "--out-dir", "/proc/mmxfer-eval"],
        2,
        ("--out-dir",),
    ),
    Case(
        "rescore-wrong-type", _rescore_with(_strings_as_predictions), 2, ("pred is str", "accuracy")
    ),
    Case(
        "rescore-empty-predictions",
        _rescore_with(lambda r: _first_predictions(r).write_text("")),
        2,
        ("empty predictions file",),
    ),
    Case(
        "rescore-predictions-not-utf8",
        _rescore_with(lambda r: _first_predictions(r).write_bytes(b"\xff\xfe{}\n")),
        2,
        ("UTF-8", ".jsonl"),
    ),
    Case(
        "rescore-metrics-not-utf8",
        _rescore_with(lambda r: (r / "metrics.jsonl").write_bytes(b"\xff\n")),
        2,
        ("metrics.jsonl", "UTF-8"),
    ),
    Case(
        "rescore-missing-run",
        lambda c: ["evaluate", "--rescore", "no-such-run"],
        2,
        ("no-such-run",),
    ),
    Case(
        "evaluate-run-unfinished",
        lambda c: ["evaluate", "--run", str(_write(c.ws / "r" / "config.yaml", "{}\n").parent)],
        2,
        ("not finished",),
    ),
    # --- train: output paths, folders in use, checkpoints that would run code
    Case(
        "runs-dir-under-file",
        lambda c: [*TRAIN, "--runs-dir", str(_file(c) / "runs")],
        2,
        ("--runs-dir", "is a file"),
    ),
    Case(
        "runs-dir-is-file",
        lambda c: [*TRAIN, "--runs-dir", str(_file(c))],
        2,
        ("--runs-dir", "not a folder"),
    ),
    Case(
        "runs-dir-proc", lambda c: [*TRAIN, "--runs-dir", "/proc/mmxfer-runs"], 2, ("--runs-dir",)
    ),
    Case(
        "study-runs-dir-under-file",
        lambda c: ["study", _mini_study(c), "--runs-dir", str(_file(c) / "r")],
        2,
        ("--runs-dir",),
    ),
    Case(
        "embed-output-is-folder",
        lambda c: [
            "embed",
            "--trunk",
            "tiny",
            "--input",
            str(_write(c.ws / "in.txt", "a\n")),
            "--output",
            str(_mkdir(c.ws / "emb.npy")),
        ],
        2,
        ("--output", "folder"),
    ),
    Case("force-symlinked-run", _symlinked_run, 2, ("symbolic link",)),
    Case("run-in-use", _locked_run, 2, ("in use by pid", "mmxfer train")),
    Case("run-stale-lock", _stale_lock, 0, ("done:",), stream="out"),
    Case(
        "unfinished-without-resume",
        lambda c: (c.unfinished(), [*TRAIN, "--runs-dir", "runs"])[1],
        2,
        ("--resume",),
    ),
    Case(
        "malicious-scheduler",
        lambda c: _plant_checkpoint(c, "scheduler.pt"),
        2,
        ("scheduler.pt", "refused"),
        check=_not_pwned,
    ),
    Case(
        "malicious-optimizer",
        lambda c: _plant_checkpoint(c, "optimizer.bin"),
        2,
        ("optimizer.bin", "refused"),
        check=_not_pwned,
    ),
    Case(
        "malicious-rng-state",
        lambda c: _plant_checkpoint(c, "random_states_0.pkl"),
        2,
        ("random_states_0.pkl", "refused"),
        check=_not_pwned,
    ),
    Case(
        "malicious-custom-object",
        lambda c: _plant_checkpoint(c, "custom_checkpoint_0.pkl"),
        2,
        ("custom_checkpoint_0.pkl",),
        check=_not_pwned,
    ),
    # --- release files: one line naming the file, the line and the problem (round 3)
    Case(
        "sib200-row-without-text",
        _sib(_cut_field),
        2,
        ("eng_Latn/train.tsv:6", "2 tab-separated field(s)", "text"),
    ),
    Case(
        "sib200-header-without-text",
        _sib(lambda ls: [x.rsplit("\t", 1)[0] for x in ls]),
        2,
        ("eng_Latn/train.tsv:1", "missing column(s) text"),
    ),
    Case(
        "sib200-duplicate-index-id",
        _sib(lambda ls: [*ls, ls[3]], split="test"),
        2,
        ("deu_Latn/test.tsv:", "index_id", "appears again (first on line 4)"),
    ),
    Case(
        "sib200-index-id-not-number",
        _sib(lambda ls: [ls[0], "abc" + ls[1], *ls[2:]]),
        2,
        ("eng_Latn/train.tsv:2", "index_id", "not a number"),
    ),
    Case(
        "sib200-over-long-line",
        _sib(lambda ls: [*ls[:3], ls[3] + "x" * 200_000, *ls[4:]]),
        2,
        ("eng_Latn/train.tsv:4", "characters"),
    ),
    Case(
        "conllu-token-id-not-number",
        _ud(lambda t: t.replace("2\tcat", "x2\tcat")),
        2,
        ("en_toy-ud-train.conllu:4", "token id 'x2'"),
    ),
    Case(
        "conllu-duplicate-sent-id",
        _ud(lambda t: t.replace("sent_id = s2", "sent_id = s1")),
        2,
        ("en_toy-ud-train.conllu:8", "sent_id 's1' appears again (first on line 1)"),
    ),
    Case(
        "conllu-duplicate-word-id",
        _ud(lambda t: t.replace("2\tbark", "1\tbark")),
        2,
        ("en_toy-ud-train.conllu:10", "word id 1 appears twice"),
    ),
    Case(
        "squad-answer-start-not-number",
        _squad(lambda i, c: {"text": "x", "answer_start": "near"} if i == 2 else None),
        2,
        ("train-v1.1.json", "question 'q2'", "answer_start 'near'"),
    ),
    Case(
        "squad-duplicate-question-id",
        _squad(None, test=_squad_json(4).replace('"q3"', '"q1"')),
        2,
        ("xquad.de.json", "question id 'q1' appears twice"),
    ),
    Case(
        "squad-answer-beyond-context-skipped",
        _squad(_beyond),
        0,
        ("done:",),
        stream="out",
        check=_skipped_counted,
        logged=("train: 3 of 12 example(s) left out", "Could not find answer"),
    ),
    Case(
        "squad-answer-elsewhere-skipped",
        _squad(lambda i, c: {"text": "Nowhere", "answer_start": 3} if i % 4 == 1 else None),
        0,
        ("done:",),
        stream="out",
        check=_skipped_counted,
        logged=("train: 3 of 12 example(s) left out", "Could not find answer"),
    ),
    Case(
        "pawsx-missing-column",
        _pawsx(lambda ls: [x.rsplit("\t", 1)[0] for x in ls]),
        2,
        ("de/test_2k.tsv:1", "missing column(s) label"),
    ),
    Case(
        "pawsx-duplicate-id",
        _pawsx(lambda ls: [*ls, ls[5]]),
        2,
        ("de/test_2k.tsv:22", "id '5' appears again"),
    ),
    Case(
        "pawsx-extra-field",
        _pawsx(lambda ls: [*ls[:4], ls[4] + "\tstray", *ls[5:]]),
        2,
        ("de/test_2k.tsv:5", "5 tab-separated field(s)"),
    ),
    Case(
        "tatoeba-over-long-line", _tatoeba_long, 2, ("tatoeba.kaz-eng.kaz:2", "200,000 characters")
    ),
    Case(
        "bucc-duplicate-sentence-id",
        _bucc_duplicate,
        2,
        (".de:3: sentence id 'de-1' appears again (first on line 1)",),
    ),
    Case(
        "hellaswag-label-not-number",
        _intermediate(
            "hellaswag",
            {
                "hellaswag_train.jsonl": "".join(
                    json.dumps(r) + "\n" for r in (HELLASWAG, {**HELLASWAG, "label": "x"})
                ),
                "hellaswag_val.jsonl": json.dumps(HELLASWAG) + "\n",
            },
        ),
        2,
        ("hellaswag_train.jsonl:2", "not of this format", "'x'"),
    ),
    Case(
        "gqa-question-without-answer",
        _intermediate(
            "gqa",
            {
                "train_balanced_questions.json": json.dumps(
                    {
                        "1": {"question": "What is it?", "answer": "a cube", "imageId": "n1"},
                        "2": {"question": "Where?", "imageId": "n2"},
                    }
                )
            },
        ),
        2,
        ("train_balanced_questions.json: question '2'", "no 'answer'"),
    ),
    # --- YAML that would hang (billion laughs) or is too big: refused before any work
    Case(
        "yaml-bomb-validate",
        lambda c: ["validate", str(_write(c.ws / "p.yaml", _laughs()))],
        2,
        ("p.yaml", "more than 100,000 values", "aliases"),
    ),
    Case(
        "yaml-bomb-config",
        lambda c: [
            *TRAIN,
            "--config",
            str(_write(c.ws / "p.yaml", "trunk: {name: tiny}\n" + _laughs())),
            "--runs-dir",
            "runs",
        ],
        2,
        ("p.yaml", "more than 100,000 values"),
        True,
    ),
    Case("yaml-bomb-study", _bomb_study, 2, ("bomb-study.yaml", "more than 100,000 values"), True),
    Case(
        "yaml-bomb-override",
        lambda c: [
            *TRAIN,
            "--set",
            "trunk.name=["
            + ", ".join(
                f"&x{i} [" + ", ".join([f"*x{i - 1}" if i else "1"] * 12) + "]" for i in range(6)
            )
            + "]",
            "--runs-dir",
            "runs",
        ],
        2,
        ("override", "more than 100,000 values"),
        True,
    ),
    Case(
        "yaml-too-big",
        lambda c: ["validate", str(_write(c.ws / "p.yaml", "description: " + "x" * (2 << 20)))],
        2,
        ("p.yaml", "bytes of YAML", "1,048,576"),
    ),
    # --- mmxfer embed input rules (as --help states them)
    Case(
        "embed-long-line",
        _embed("a short line\n" + "word " * 20_000 + "\n"),
        0,
        ("wrote 2 x 32",),
        stream="out",
        check=_truncated_like_others,
    ),
    Case("embed-nul-byte", _embed("first\nsec\x00ond\n"), 2, ("in.txt:2", "NUL byte")),
    Case(
        "embed-blank-lines-kept",
        _embed("first\n\n\nfourth\n"),
        0,
        ("wrote 4 x 32",),
        stream="out",
        check=_rows(4),
    ),
    # --- a cache that cannot be written: one line naming MMXFER_CACHE, no run folder
    Case(
        "cache-not-writable",
        _cache_at("/proc/mmxfer-cache"),
        2,
        ("MMXFER_CACHE", "/proc/mmxfer-cache"),
        True,
    ),
    Case(
        "cache-under-a-file",
        lambda c: _cache_at(str(_file(c) / "cache"))(c),
        2,
        ("MMXFER_CACHE", "a file is in the way"),
        True,
    ),
    # --- damaged derived files: a feature-cache entry is logged and computed again, to the clean run's metrics
    Case(
        "cache-entry-bytes-flipped",
        _damaged_cache(lambda e: _flip(_arrow(e))),
        0,
        ("done:",),
        stream="out",
        check=_recomputed,
        logged=(
            "feature cache:",
            ".arrow: content differs from its sha256 in DONE",
            "computing it again",
        ),
    ),
    Case(
        "cache-entry-truncated",
        _damaged_cache(lambda e: _arrow(e).write_bytes(_arrow(e).read_bytes()[:5000])),
        0,
        ("done:",),
        stream="out",
        check=_recomputed,
        logged=("feature cache:", ".arrow: 5000 bytes,", "recorded in DONE", "computing it again"),
    ),
    Case(
        "cache-entry-wrong-dtype",
        _damaged_cache(
            lambda e: _rewrite(
                e, lambda r: {"input_ids": [float(x) + 0.25 for x in r["input_ids"]]}
            )
        ),
        0,
        ("done:",),
        stream="out",
        check=_recomputed,
        logged=("feature cache:", "recorded in DONE", "computing it again"),
    ),
    Case(
        "cache-entry-wrong-labels",
        _damaged_cache(lambda e: _rewrite(e, lambda r: {"labels": (r["labels"] + 1) % 7})),
        0,
        ("done:",),
        stream="out",
        check=_recomputed,
        logged=(
            "feature cache:",
            ".arrow: content differs from its sha256 in DONE",
            "computing it again",
        ),
    ),
    Case(
        "cache-entry-done-missing",
        _damaged_cache(lambda e: (e / "DONE").unlink()),
        0,
        ("done:",),
        stream="out",
        check=_recomputed,
        logged=("feature cache:", "no DONE (the writer did not finish)", "computing it again"),
    ),
    Case(
        "cache-entry-done-garbled",
        _damaged_cache(lambda e: _write(e / "DONE", "{not json")),
        0,
        ("done:",),
        stream="out",
        check=_recomputed,
        logged=("feature cache:", "DONE: unreadable", "computing it again"),
    ),
    Case(
        "cache-entry-without-checksums",
        _damaged_cache(lambda e: _write(e / "DONE", '{"rows": 300}')),
        0,
        ("done:",),
        stream="out",
        check=_recomputed,
        logged=("feature cache:", "holds no checksums", "computing it again"),
    ),
    Case(
        "cache-entry-file-missing",
        _damaged_cache(lambda e: (e / "state.json").unlink()),
        0,
        ("done:",),
        stream="out",
        check=_recomputed,
        logged=("feature cache:", "state.json: missing (listed in DONE)", "computing it again"),
    ),
    # --- a saved trunk in the cache (the tiny test trunk; the starter conversion: tests/models/test_starter.py)
    Case(
        "saved-trunk-weights-flipped",
        _tiny_trunk_damaged(lambda d: _flip(d / "model.safetensors", every=101)),
        0,
        ("wrote 2 x 32",),
        stream="out",
        check=_same_embeddings,
        logged=("model.safetensors: content differs", "making it again"),
    ),
    Case(
        "saved-trunk-tokenizer-truncated",
        _tiny_trunk_damaged(
            lambda d: (d / "tokenizer.json").write_bytes((d / "tokenizer.json").read_bytes()[:100])
        ),
        0,
        ("wrote 2 x 32",),
        stream="out",
        check=_same_embeddings,
        logged=("tokenizer.json: 100 bytes,", "making it again"),
    ),
    # --- a damaged phase-2 folder is refused, saying how to train it again
    Case(
        "phase2-weights-flipped",
        _damaged_phase2(lambda f: _flip(f / "trunk" / "model.safetensors")),
        2,
        ("phase 2", "damaged", "model.safetensors", "content differs", "remove"),
    ),
    Case(
        "phase2-weights-truncated",
        _damaged_phase2(lambda f: (f / "trunk" / "model.safetensors").write_bytes(b"")),
        2,
        ("phase 2", "damaged", "model.safetensors", "0 bytes"),
    ),
    Case(
        "phase2-checksums-removed",
        _damaged_phase2(lambda f: (f / "trunk" / "CHECKSUMS.json").unlink()),
        2,
        ("phase 2", "CHECKSUMS.json", "missing", "remove"),
    ),
    Case(
        "phase2-done-garbled",
        _damaged_phase2(lambda f: _write(f / "DONE", "{")),
        2,
        ("DONE", "not valid JSON", "remove"),
    ),
    Case(
        "phase2-trunk-embedded-damaged",
        _damaged_phase2(
            lambda f: _flip(f / "trunk" / "model.safetensors"),
            lambda f: [
                "embed",
                "--trunk",
                str(f / "trunk"),
                "--input",
                str(_write(f.parent / "in.txt", "Hallo\n")),
                "--output",
                str(f.parent / "e.npy"),
            ],
        ),
        2,
        ("trunk folder", "is damaged", "model.safetensors"),
    ),
    # --- listing
    Case(
        "ls-runs-missing-dir",
        lambda c: ["ls", "runs", "--runs-dir", "/nonexistent"],
        2,
        ("/nonexistent",),
    ),
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
    arms = [
        SynthArm("baseline", (), "none"),
        SynthArm("mnli", ("mnli",), "text", 2.0),
        SynthArm("vqa", ("vqa",), "image-text", 5.0),
    ]
    make_study(
        root / "syn", arms, [SynthTask("xnli", "classification", ("en", "de", "sw"), 60)], [1]
    )
    return finished, root / "syn", killed


RESULTS: dict[str, str] = {}  # case id -> "" when handled cleanly, else what went wrong


def _replay(case: Case, ctx: Ctx, capsys, caplog) -> str:
    """'' when the case is handled cleanly, else what went wrong."""
    try:
        argv = case.argv(ctx)
        capsys.readouterr()
        caplog.clear()
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
        lines = [
            line for line in err.replace("\r", "\n").splitlines() if line.startswith("mmxfer ")
        ]
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
    if case.logged:
        said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        named = [m for m in said if case.logged[0] in m]
        if len(named) != 1 or any(w not in named[0] for w in case.logged):
            problems.append(f"expected one warning holding {list(case.logged)}, logged {said}")
    if case.check is not None:
        try:
            case.check(ctx)
        except AssertionError as exc:
            problems.append(str(exc) or "check failed")
    return "; ".join(problems)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(case, fixtures, tmp_path, monkeypatch, capsys, caplog):
    finished, synthetic, killed = fixtures
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path.parent / "replay-cache"))
    monkeypatch.delenv("MMXFER_DEBUG", raising=False)
    caplog.set_level(logging.WARNING)
    problem = _replay(case, Ctx(tmp_path, finished, synthetic, killed), capsys, caplog)
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

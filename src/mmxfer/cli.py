"""The one entry point: ``mmxfer train|evaluate|compare|study|embed|ls|validate``.

Argument parsing lives here; each subcommand's work lives in its own module and is imported
only when that subcommand runs, so ``mmxfer --help`` stays fast.

Errors end as one line on stderr, on a line of their own even after a progress bar:

- every :class:`MmxferError` (exit 2);
- what the environment causes - a file that cannot be read or written (``OSError``), text that is not
  UTF-8, broken JSON or YAML, damaged gzip data (``zlib.error``, ``EOFError``) - naming the file (exit 2);
- SIGTERM (SLURM's time limit): training checkpoints first; exit 143 with how to resume;
- Ctrl-C: exit 130 with how to resume.

``--debug`` (or ``-v``, or ``MMXFER_DEBUG=1``) shows the traceback instead; any other exception is a bug and
always shows its traceback. Output paths (``--runs-dir``, ``--out``, ``--out-dir``, ``--output``) are checked
before the work starts.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import zlib
from collections.abc import Callable, Sequence
from types import TracebackType

import yaml

from mmxfer import __version__
from mmxfer.compare.settings import GapSettings
from mmxfer.errors import MmxferError
from mmxfer.runs import atomic, interrupt

EPILOG_TRAIN = """examples:
  mmxfer train --intermediate vqa                      # starter profile, offline, CPU
  mmxfer train --intermediate vqa --target xnli --profile xlmr-large --seed 1
  mmxfer train --intermediate mnli,squad,hellaswag --target pawsx --profile xlmr-base
  mmxfer train --intermediate none --target udpos     # the no-intermediate baseline arm
  mmxfer train --intermediate vqa --target flores200-translate --data-dir DIR --languages deu_Latn,swh_Latn
  accelerate launch -m mmxfer train --intermediate caption --target xquad --profile xlmr-large
"""

EPILOG_EVALUATE = """examples:
  mmxfer evaluate --trunk starter --suite starter
  mmxfer evaluate --trunk xlm-roberta-large --suite xtreme-retrieval
  mmxfer evaluate --trunk starter --task tatoeba --data-dir DIR --languages kaz,amh --output scores.json
  mmxfer evaluate --run runs/default/vqa-xnli-s1-1a2b3c --suite xtreme
  mmxfer evaluate --rescore runs/default/vqa-xnli-s1-1a2b3c
  mmxfer evaluate --hypotheses hyps/ --data-dir flores200 --languages deu_Latn,swh_Latn --output scores.json
"""

EPILOG_COMPARE = """examples:
  mmxfer compare --suite starter
  mmxfer compare --suite flores200 --runs runs/paper --out reports/flores200
"""

EPILOG_STUDY = """examples:
  mmxfer study starter                          # the embedded default comparison (offline, CPU)
  mmxfer study configs/studies/paper.yaml --dry-run
  mmxfer study paper --dry-run --gpu H200 --gpus 64 --budget-gpu-hours 500
  mmxfer study paper --dry-run --pilot runs/small --detect 1.0   # seeds needed, from a pilot's variances
  mmxfer study paper --launcher slurm --set slurm.partition=gpu
"""

EPILOG_EMBED = """examples:
  mmxfer embed --trunk starter --input sentences.txt --output emb.npy
  mmxfer embed --trunk runs/default/vqa-s1-1a2b/trunk --input de.txt --output de.npy --layer 7 --pooling mean
"""

EPILOG_LS = """examples:
  mmxfer ls tasks
  mmxfer ls suites
  mmxfer ls profiles
"""

EPILOG_VALIDATE = """examples:
  mmxfer validate configs/profiles/xlmr-large.yaml
  mmxfer validate configs/studies/paper.yaml --set seeds=[1,2]
"""


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set target.lr=2e-5 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmxfer",
        description="Multimodal vs text intermediate-task training for zero-shot cross-lingual transfer.",
        epilog="Run `mmxfer COMMAND --help` for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"mmxfer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more, and show tracebacks on errors")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of its one line (also MMXFER_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("train", help="run one arm: intermediate training, target fine-tuning, zero-shot eval",
                       description="Phase 2 (intermediate task, English) -> phase 3 (target task, English) -> "
                                   "zero-shot evaluation on every target language, all in one run folder.",
                       epilog=EPILOG_TRAIN, formatter_class=fmt)
    p.add_argument("--intermediate", default="none",
                   help="intermediate task(s): a name, a comma list for multi-task, or 'none' (baseline)")
    p.add_argument("--target", default=None,
                   help="target task; without it the run stops after phase 2 and evaluates retrieval")
    p.add_argument("--profile", default="starter",
                   help="profile name (starter, xlmr-base, xlmr-large) or YAML path [default: starter]")
    p.add_argument("--config", default=None, help="a profile YAML file (same as --profile PATH)")
    p.add_argument("--seed", type=int, default=None, help="seed for data order, new heads and dropout")
    p.add_argument("--study", default=None, help="study folder name under the runs dir")
    p.add_argument("--arm", default=None, help="arm name recorded in the run config [default: from --intermediate]")
    p.add_argument("--runs-dir", default=None, help="where run folders go [default: the profile's runs_dir]")
    p.add_argument("--data-dir", default=None, help="local copies of datasets in their release formats")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--force", action="store_true", help="re-run even if the run folder is finished")
    p.add_argument("--languages", default=None,
                   help="comma list: evaluate zero-shot on these languages only (recorded in the run)")
    _add_config_args(p)

    p = sub.add_parser("evaluate", help="evaluate a trunk or a finished run on a suite or one task",
                       description="Zero-shot evaluation. Predictions are written to files first, then scored.",
                       epilog=EPILOG_EVALUATE, formatter_class=fmt)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--trunk", help="registered trunk name, hub id, or a trunk folder")
    who.add_argument("--run", help="a finished run folder")
    who.add_argument("--rescore", metavar="RUN", help="re-score a run's stored predictions")
    who.add_argument("--hypotheses", metavar="DIR",
                     help="score translations made elsewhere: DIR/<lang>.txt, line-aligned to FLORES-200 devtest")
    p.add_argument("--suite", default=None, help="suite name or YAML path")
    p.add_argument("--task", default=None, help="one task instead of a suite")
    p.add_argument("--languages", default=None, help="comma list of languages to evaluate")
    p.add_argument("--data-dir", default=None, help="local copies of datasets in their release formats")
    p.add_argument("--output", default=None, help="write scores as JSON: task -> language -> metric -> value")
    p.add_argument("--profile", default=None,
                   help="profile for model and retrieval settings [default: the profile that defines --trunk, "
                        "else XTREME's retrieval settings]")
    p.add_argument("--out-dir", default=None, help="folder for predictions of a trunk evaluation")
    _add_config_args(p)

    p = sub.add_parser("compare", help="gap analysis: multimodal vs text arms vs baseline, with intervals",
                       description="Builds the tidy results table from finished runs and reports margins with "
                                   "bootstrap confidence intervals, tests, tables and plots.",
                       epilog=EPILOG_COMPARE, formatter_class=fmt)
    p.add_argument("--suite", required=True, help="suite whose tasks are compared")
    p.add_argument("--runs", nargs="+", default=None, help="run folders or study folders [default: runs/]")
    p.add_argument("--out", default=None, help="output folder for tables and plots [default: reports/<suite>]")
    p.add_argument("--bootstrap", type=int, default=GapSettings.n_boot,
                   help="bootstrap resamples [default: %(default)s]")
    p.add_argument("--alpha", type=float, default=GapSettings.alpha, help="significance level [default: %(default)s]")
    p.add_argument("--seed", type=int, default=GapSettings.seed, help="seed of the bootstrap")

    p = sub.add_parser("study", help="run a grid of arms x targets x seeds, locally or on SLURM",
                       description="Expands a study config into runs, skips finished ones (DONE), and runs the "
                                   "rest in sequence or submits them to SLURM.",
                       epilog=EPILOG_STUDY, formatter_class=fmt)
    p.add_argument("study", nargs="?", default="starter", help="study name or YAML path [default: starter]")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan, the number of trainings and their cost (tokens, FLOPs, GPU-hours); run nothing")
    p.add_argument("--gpu", default="H100", metavar="KIND",
                   help="dry run: the device the cost is given on: H100, H200, A100 or cpu [default: %(default)s]")
    p.add_argument("--gpus", type=int, default=None, metavar="N", help="dry run: the wall time on N GPUs")
    p.add_argument("--budget-gpu-hours", type=float, default=None, metavar="H",
                   help="dry run: what fits H GPU-hours (seeds, then arms, then targets are dropped; see the output)")
    p.add_argument("--pilot", default=None, metavar="RUNS_DIR",
                   help="dry run: a finished pilot study whose variances say how many seeds this study needs")
    p.add_argument("--detect", type=float, default=1.0, metavar="POINTS",
                   help="dry run with --pilot: the margin (score points) to detect with 80%% power [default: 1]")
    p.add_argument("--launcher", choices=("local", "slurm"), default=None, help="override the study's launcher")
    p.add_argument("--runs-dir", default=None, help="where run folders go")
    p.add_argument("--data-dir", default=None, help="local copies of datasets in their release formats")
    p.add_argument("--no-compare", action="store_true", help="do not run `compare` when the grid is finished")
    _add_config_args(p)

    p = sub.add_parser("embed", help="write sentence embeddings of a trunk to a .npy file",
                       description="One float32 row per input line. Input: UTF-8 text, one sentence a line; row "
                                   "i of the output is line i+1 of the input. A blank line is kept as its own row "
                                   "(the embedding of the prefix alone). A NUL byte is refused with its line "
                                   "number. A line longer than --max-length tokens (or than the trunk's positions) "
                                   "is truncated.",
                       epilog=EPILOG_EMBED, formatter_class=fmt)
    p.add_argument("--trunk", default="starter", help="registered trunk name, hub id, or a run's trunk folder")
    p.add_argument("--input", required=True, help="text file, one sentence a line")
    p.add_argument("--output", required=True, help="output .npy file")
    p.add_argument("--layer", type=int, default=None, help="hidden layer (0 = embeddings, -1 = last) [default: last]")
    p.add_argument("--pooling", choices=("mean", "cls"), default="mean")
    p.add_argument("--prefix", default="", help="text prepended to every line (e5 models want 'query: ')")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=256,
                   help="tokens per line, longer lines truncated; at most the trunk's positions [default: 256]")
    p.add_argument("--no-normalize", action="store_true", help="do not L2-normalise the rows")
    p.add_argument("--precision", choices=("auto", "no", "bf16"), default="auto",
                   help="auto: bf16 autocast where the CPU/GPU has native bf16, else fp32; no: always fp32")

    p = sub.add_parser("ls", help="list tasks, suites, profiles, studies, trunks, vision towers, heads, metrics, kinds, runs",
                       epilog=EPILOG_LS, formatter_class=fmt)
    p.add_argument("what", choices=("tasks", "suites", "profiles", "studies", "trunks", "towers", "heads",
                                    "metrics", "kinds", "runs"))
    p.add_argument("--runs-dir", default="runs", help="for `ls runs`")
    p.add_argument("--verbose", dest="details", action="store_true", help="for `ls tasks`: the pinned hub revision")

    p = sub.add_parser("validate", help="check a profile, suite or study YAML file",
                       description="Parses and validates a config file (and its overrides) without running it.",
                       epilog=EPILOG_VALIDATE, formatter_class=fmt)
    p.add_argument("config", help="YAML file or shipped config name")
    p.add_argument("--kind", choices=("profile", "suite", "study"), default=None,
                   help="what the file is [default: guessed from its folder and keys]")
    _add_config_args(p)
    return parser


# Each command's module is imported when that command runs, not at the top: they pull in torch, pandas
# and matplotlib (listing: the configs and the run store), and `mmxfer --help` stays fast.
def _train(args: argparse.Namespace) -> int:
    from mmxfer.train.cli import run

    return run(args)


def _evaluate(args: argparse.Namespace) -> int:
    from mmxfer.evaluation.cli import run

    return run(args)


def _compare(args: argparse.Namespace) -> int:
    from mmxfer.compare.cli import run

    return run(args)


def _study(args: argparse.Namespace) -> int:
    from mmxfer.study.cli import run

    return run(args)


def _embed(args: argparse.Namespace) -> int:
    from mmxfer.models.embed import run

    return run(args)


def _ls(args: argparse.Namespace) -> int:
    from mmxfer.listing import run

    return run(args)


def _validate(args: argparse.Namespace) -> int:
    from mmxfer.listing import validate

    return validate(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _train,
    "evaluate": _evaluate,
    "compare": _compare,
    "study": _study,
    "embed": _embed,
    "ls": _ls,
    "validate": _validate,
}


#: errors the environment causes (not bugs): one line naming the file, unless --debug
ENVIRONMENT_ERRORS: tuple[type[BaseException], ...] = (OSError, UnicodeDecodeError, json.JSONDecodeError,
                                                       yaml.YAMLError, zlib.error, EOFError)
#: (attribute, option, kind) of the arguments that name something a command writes
OUTPUT_ARGS = (("runs_dir", "--runs-dir", "dir"), ("out", "--out", "dir"), ("out_dir", "--out-dir", "dir"),
               ("output", "--output", "file"))


#: the commands that write derived files (features, the converted starter trunk) into $MMXFER_CACHE
CACHE_COMMANDS = ("train", "study", "evaluate", "embed")


def fills_cache(args: argparse.Namespace) -> bool:
    """Whether the command may write into the cache (a dry run and a re-scoring of stored predictions do not)."""
    return args.command in CACHE_COMMANDS and not getattr(args, "dry_run", False) \
        and not getattr(args, "rescore", None)


def check_output_args(args: argparse.Namespace) -> None:
    """Output paths given on the command line, and the cache of a command that fills it, must be writable before
    any work starts."""
    if args.command == "ls":  # `ls runs --runs-dir` reads
        return
    for attr, option, kind in OUTPUT_ARGS:
        value = getattr(args, attr, None)
        if value:
            (atomic.check_output_dir if kind == "dir" else atomic.check_output_file)(value, option)
    if fills_cache(args):
        from mmxfer import assets

        assets.check_cache_writable()


def _file_in_traceback(tb: TracebackType | None) -> str | None:
    """The file an error happened in: the innermost open file object (or ``path`` variable) of the frames."""
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in list(frame.f_locals.values()):
            name = getattr(value, "name", None) if isinstance(value, io.IOBase) else None
            if isinstance(name, str):
                return name
    for frame in reversed(frames):
        for key in ("path", "filename", "file", "source"):
            value = frame.f_locals.get(key)
            if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
                return os.fspath(value)
    return None


def describe_error(exc: BaseException) -> str:
    """One line for an error the environment caused, naming the file."""
    if isinstance(exc, OSError) and exc.filename is not None:
        where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
        return f"{where}: {exc.strerror or exc}"
    where = _file_in_traceback(exc.__traceback__) or "(file unknown)"
    if isinstance(exc, UnicodeDecodeError):
        return f"{where}: not UTF-8 text (byte {exc.start}: {exc.reason})"
    if isinstance(exc, json.JSONDecodeError):
        return f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    if isinstance(exc, yaml.YAMLError):
        return f"{where}: not valid YAML ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    if isinstance(exc, (zlib.error, EOFError)):
        return f"{where}: damaged or truncated compressed data ({exc})"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{where}: {text}"


def end_progress_bars() -> None:
    """Close every live progress bar, so what follows starts on a line of its own."""
    tqdm_std = sys.modules.get("tqdm.std")
    bars = list(getattr(getattr(tqdm_std, "tqdm", None), "_instances", []) or [])
    for bar in bars:
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the error
            pass
    if bars:
        sys.stderr.flush()
        sys.stdout.flush()


def _fail(command: str, message: str) -> None:
    end_progress_bars()
    print(f"mmxfer {command}: error: {' '.join(message.split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    debug = args.debug or args.verbose or os.environ.get("MMXFER_DEBUG", "") not in ("", "0")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    with interrupt.handling_sigterm():
        try:
            check_output_args(args)
            return int(COMMANDS[args.command](args) or 0)
        except MmxferError as exc:
            if debug:
                raise
            _fail(args.command, str(exc))
            return exc.exit_code
        except interrupt.Stopped as exc:
            end_progress_bars()
            kept = f" ({exc.detail})" if exc.detail else ""
            again = {"train": "resume with --resume (the same command plus --resume)",
                     "study": "run the same study again to resume"}.get(args.command, "run it again")
            print(f"\nmmxfer {args.command}: stopped by {exc.signal_name}{kept}; finished work and checkpoints are "
                  f"kept: {again}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            end_progress_bars()
            print(f"\nmmxfer {args.command}: interrupted; finished work is kept, rerun with --resume to continue",
                  file=sys.stderr)
            return 130
        except ENVIRONMENT_ERRORS as exc:
            if debug:
                raise
            _fail(args.command, describe_error(exc) + " (--debug shows the traceback)")
            return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

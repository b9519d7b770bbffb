"""``mmxfer embed``: one float32 row of sentence embedding per input line (:func:`mmxfer.models.embed.encode`),
written atomically to a ``.npy`` file."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from mmxfer.cli.common import Command, always
from mmxfer.errors import ConfigError, DataError
from mmxfer.runs.atomic import atomic_open

EPILOG = """examples:
  mmxfer embed --trunk starter --input sentences.txt --output emb.npy
  mmxfer embed --trunk runs/default/vqa-s1-1a2b/trunk --input de.txt --output de.npy --layer 7 --pooling mean
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trunk", default="starter", help="registered trunk name, hub id, or a run's trunk folder"
    )
    p.add_argument("--input", required=True, help="text file, one sentence a line")
    p.add_argument("--output", required=True, help="output .npy file")
    p.add_argument(
        "--layer",
        type=int,
        default=None,
        help="hidden layer (0 = embeddings, -1 = last) [default: last]",
    )
    p.add_argument("--pooling", choices=("mean", "cls"), default="mean")
    p.add_argument(
        "--prefix", default="", help="text prepended to every line (e5 models want 'query: ')"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--max-length",
        type=int,
        default=256,
        help="tokens per line, longer lines truncated; at most the trunk's positions [default: 256]",
    )
    p.add_argument("--no-normalize", action="store_true", help="do not L2-normalise the rows")
    p.add_argument(
        "--precision",
        choices=("auto", "no", "bf16"),
        default="auto",
        help="auto: bf16 autocast where the CPU/GPU has native bf16, else fp32; no: always fp32",
    )


def read_input(path: Path) -> list[str]:
    """The lines of an ``embed`` input file, as ``mmxfer embed --help`` states: ``\\n``-separated (a final newline
    ends the last line, ``\\r\\n`` counts as one), blank lines kept, a NUL byte a :class:`DataError` naming its
    line."""
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.rstrip("\r") for line in lines]
    if not lines:
        raise DataError(f"input file is empty: {path}")
    if "\x00" in text:
        n = next(i for i, line in enumerate(lines, 1) if "\x00" in line)
        raise DataError(
            f"{path}:{n}: a NUL byte (column {lines[n - 1].index(chr(0)) + 1}); the input must be text, "
            f"one sentence a line"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mmxfer.models.embed import encode
    from mmxfer.models.trunk import load_trunk
    from mmxfer.runs.env import precision_text

    lines = read_input(Path(args.input))
    output = Path(args.output)
    if output.suffix != ".npy":
        raise ConfigError(f"--output must end in .npy, got {output}")
    model, tokenizer = load_trunk(args.trunk)
    emb = encode(
        model,
        tokenizer,
        lines,
        layer=args.layer,
        pooling=args.pooling,
        prefix=args.prefix,
        batch_size=args.batch_size,
        max_length=args.max_length,
        normalize=not args.no_normalize,
        precision=args.precision,
    )
    buffer = io.BytesIO()
    np.save(buffer, emb)
    with atomic_open(output, "wb") as handle:
        handle.write(buffer.getvalue())
    device = next(model.parameters()).device.type
    print(
        f"wrote {emb.shape[0]} x {emb.shape[1]} float32 embeddings to {output} "
        f"(precision {precision_text(args.precision, device)})"
    )
    return 0


COMMAND = Command(
    "embed",
    help="write sentence embeddings of a trunk to a .npy file",
    description="One float32 row per input line. Input: UTF-8 text, one sentence a line; row "
    "i of the output is line i+1 of the input. A blank line is kept as its own row "
    "(the embedding of the prefix alone). A NUL byte is refused with its line "
    "number. A line longer than --max-length tokens (or than the trunk's positions) "
    "is truncated.",
    epilog=EPILOG,
    add_arguments=add_arguments,
    run=run,
    outputs=(("output", "--output", "file"),),
    fills_cache=always,
)

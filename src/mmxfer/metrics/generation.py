"""Translation scores through sacrebleu: chrF++ and spBLEU (FLORES-200 SentencePiece tokenisation).

spBLEU tokenises hypotheses and references with the FLORES-200 SentencePiece model and computes BLEU
on the pieces; sacrebleu's ``flores200`` tokenizer does exactly that (``" ".join(EncodeAsPieces)``), so
with a local model file we tokenise ourselves and call sacrebleu with ``tokenize="none"``, which gives
the same number without any download (a test checks it against ``BLEU(tokenize="flores200")``); results
record sacrebleu's ``tok:flores200`` signature. The model is found by :func:`resolve_spm_model`: an explicit
path, else ``$MMXFER_FLORES200_SPM``, else sacrebleu's own copy. Without it, spBLEU cannot be computed and
rows say so (:data:`SPM_MISSING`); chrF++ needs no model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from mmxfer.errors import AssetError, DataError
from mmxfer.metrics.base import register

# sacrebleu and sentencepiece are imported when a score is computed: registering the metrics stays fast

FLORES200_SPM_URL = "https://tinyurl.com/flores200sacrebleuspm"


def _check(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    if not hyps:
        raise DataError("translation scoring: no hypotheses")
    if refs and isinstance(refs[0], str):
        ref_streams = [list(refs)]  # one reference per hypothesis
    else:
        ref_streams = [list(r) for r in refs]
    for stream in ref_streams:
        if len(stream) != len(hyps):
            raise DataError(
                f"translation scoring: {len(hyps)} hypotheses but {len(stream)} references"
            )
    return ref_streams


def chrf_pp(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> float:
    """Corpus chrF++ (sacrebleu ``CHRF(word_order=2)``), 0-100. ``refs``: one per hyp, or a list of streams."""
    from sacrebleu.metrics import CHRF

    return float(CHRF(word_order=2).corpus_score(list(hyps), _check(hyps, refs)).score)


def default_spm_path() -> Path:
    """Where sacrebleu keeps (and looks for) the FLORES-200 SentencePiece model."""
    from sacrebleu.utils import SACREBLEU_DIR

    return Path(SACREBLEU_DIR) / "models" / os.path.basename(FLORES200_SPM_URL)


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("MMXFER_OFFLINE", "HF_HUB_OFFLINE")
    )


@lru_cache(maxsize=4)
def _load_spm(path: str):  # noqa: ANN202 - sentencepiece has no stubs
    try:
        import sentencepiece as spm
    except ImportError:
        raise AssetError(
            "spBLEU needs the sentencepiece package: pip install sentencepiece"
        ) from None
    processor = spm.SentencePieceProcessor()
    try:
        processor.Load(path)
    except (OSError, RuntimeError) as exc:
        raise AssetError(f"spBLEU: cannot read SentencePiece model {path}: {exc}") from None
    return processor


SPM_ENV = "MMXFER_FLORES200_SPM"
SPM_MISSING = (
    "needs the flores200 SPM model"  # what a spBLEU row says when the model is not on this machine
)


def resolve_spm_model(spm_model: str | os.PathLike[str] | None = None) -> Path:
    """A local FLORES-200 SentencePiece model: ``spm_model`` if given, else ``$MMXFER_FLORES200_SPM``, else
    sacrebleu's own copy (``$SACREBLEU/models/flores200sacrebleuspm``), downloaded through sacrebleu only when
    online."""
    env = os.environ.get(SPM_ENV)
    if spm_model is None and env:
        spm_model = env
    if spm_model is not None:
        path = Path(spm_model).expanduser()
        if not path.is_file():
            raise AssetError(
                f"spBLEU {SPM_MISSING}: SentencePiece model not found at {path}"
                f"{f' (from {SPM_ENV})' if spm_model == env else ''}"
            )
        return path
    path = default_spm_path()
    if path.is_file():
        return path
    hint = (
        f"download {FLORES200_SPM_URL} on a connected machine and set {SPM_ENV}=/path/to/it "
        f"(or save it as {path}, or set translation.spm_model)"
    )
    if _offline():
        raise AssetError(f"spBLEU {SPM_MISSING} and this machine is offline: {hint}")
    try:
        from sacrebleu.utils import download_file

        download_file(FLORES200_SPM_URL, str(path))
    except Exception as exc:  # any network failure ends in the same instruction
        raise AssetError(
            f"spBLEU {SPM_MISSING}: it could not be downloaded ({exc}); {hint}"
        ) from None
    return path


def spm_model_or_reason(
    spm_model: str | os.PathLike[str] | None = None,
) -> tuple[Path | None, str | None]:
    """``(path, None)`` when spBLEU can be computed here, else ``(None, the reason in one line)``."""
    try:
        return resolve_spm_model(spm_model), None
    except AssetError as exc:
        return None, str(exc)


def spbleu_signature() -> str:
    """sacrebleu's signature of ``BLEU(tokenize="flores200")``, which mmxfer's spBLEU equals."""
    from sacrebleu import __version__

    return f"nrefs:1|case:mixed|eff:no|tok:flores200|smooth:exp|version:{__version__}"


def _spm_tokenised(
    hyps: Sequence[str],
    refs: Sequence[str] | Sequence[Sequence[str]],
    spm_model: str | os.PathLike[str] | None,
) -> tuple[list[str], list[list[str]]]:
    streams = _check(hyps, refs)
    sp = _load_spm(str(resolve_spm_model(spm_model)))

    def tok(line: str) -> str:  # as sacrebleu: the line is right-stripped before it is encoded
        return " ".join(sp.EncodeAsPieces(line.rstrip()))

    return [tok(h) for h in hyps], [[tok(r) for r in s] for s in streams]


def spbleu(
    hyps: Sequence[str],
    refs: Sequence[str] | Sequence[Sequence[str]],
    spm_model: str | os.PathLike[str] | None = None,
) -> float:
    """Corpus spBLEU (BLEU on FLORES-200 SentencePiece pieces, sacrebleu defaults otherwise), 0-100."""
    from sacrebleu.metrics import BLEU

    pieces, streams = _spm_tokenised(hyps, refs, spm_model)
    return float(BLEU(tokenize="none").corpus_score(pieces, streams).score)


def _segment_stats(metric, hyps: Sequence[str], ref_streams: list[list[str]]) -> np.ndarray:  # noqa: ANN001
    """(n, d) per-segment statistics that sacrebleu sums for its corpus score (its own bootstrap uses them)."""
    return np.asarray(metric._extract_corpus_statistics(list(hyps), ref_streams), dtype=np.float64)


def _scores_from_stats(metric, summed: np.ndarray) -> np.ndarray:  # noqa: ANN001
    rows = np.rint(np.atleast_2d(summed)).astype(np.int64)
    scores = np.array([metric._compute_score_from_stats(list(map(int, row))).score for row in rows])
    return scores.reshape(np.shape(summed)[:-1])


def chrf_pp_stats(golds: list, preds: list) -> np.ndarray:
    """Per-segment chrF++ statistics (character and word n-gram matches and totals)."""
    from sacrebleu.metrics import CHRF

    return _segment_stats(CHRF(word_order=2), preds, _check(preds, golds))


def chrf_pp_from_stats(summed: np.ndarray) -> np.ndarray:
    from sacrebleu.metrics import CHRF

    return _scores_from_stats(CHRF(word_order=2), summed)


@register(
    "chrf_pp",
    primary="chrf_pp",
    corpus_level=True,
    description="corpus chrF++ (sacrebleu, word_order=2)",
    aliases=("chrf++",),
    stats=chrf_pp_stats,
    from_stats=chrf_pp_from_stats,
)
def _chrf_metric(golds: list, preds: list) -> dict[str, float]:
    return {"chrf_pp": chrf_pp(preds, golds), "n": float(len(golds))}


def spbleu_stats(golds: list, preds: list, spm_model: str | None = None) -> np.ndarray:
    """Per-segment BLEU statistics on SentencePiece pieces (lengths, n-gram matches and totals)."""
    from sacrebleu.metrics import BLEU

    pieces, streams = _spm_tokenised(preds, golds, spm_model)
    return _segment_stats(BLEU(tokenize="none"), pieces, streams)


def spbleu_from_stats(summed: np.ndarray) -> np.ndarray:
    from sacrebleu.metrics import BLEU

    return _scores_from_stats(BLEU(tokenize="none"), summed)


@register(
    "spbleu",
    primary="spbleu",
    corpus_level=True,
    description="corpus spBLEU with the FLORES-200 SentencePiece model (sacrebleu)",
    stats=spbleu_stats,
    from_stats=spbleu_from_stats,
)
def _spbleu_metric(golds: list, preds: list, spm_model: str | None = None) -> dict[str, float]:
    return {"spbleu": spbleu(preds, golds, spm_model), "n": float(len(golds))}

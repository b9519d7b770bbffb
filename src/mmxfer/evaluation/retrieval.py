"""Retrieval evaluation of a trunk: embed, retrieve, write predictions, score - with the settings stored.

The settings (layer, pooling, normalisation, margin, k, direction, threshold source, prefix) come from
:class:`mmxfer.config.RetrievalConfig`, overridden per suite task by its ``params`` (e.g. XTREME's
Tatoeba uses plain nearest neighbour: ``margin: absolute``), and are written into every metric row.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmxfer import config
from mmxfer.catalog import TRUNKS, load_plugins
from mmxfer.config import ExperimentConfig, RetrievalConfig, from_dict, to_dict
from mmxfer.errors import ConfigError, DataError
from mmxfer.metrics import retrieval as retrieval_metrics
from mmxfer.models.embed import encode

Embedder = Callable[[list[str]], np.ndarray]
_FIELDS = {f.name for f in dataclasses.fields(RetrievalConfig)}


def with_params(cfg: RetrievalConfig, params: dict[str, Any] | None) -> RetrievalConfig:
    """``cfg`` with the retrieval keys of a suite task's ``params`` applied (other keys are ignored)."""
    updates = {k: v for k, v in (params or {}).items() if k in _FIELDS}
    return from_dict(RetrievalConfig, {**to_dict(cfg), **updates}, "retrieval") if updates else cfg


#: XTREME's retrieval layer by trunk depth, as an index into ``hidden_states`` (0 = embeddings): Tatoeba with
#: XLM-R Large takes layer 13 of the last 24 = hidden_states[14] (scripts/run_tatoeba.sh, also jiant's head);
#: 12-layer trunks take specific_layer 7 of the last 12 = hidden_states[8] (mBERT; XTREME has no working XLM-R
#: Base setting)
XTREME_LAYERS = {24: 14, 12: 8}
#: what XTREME embeds with when no profile defines the trunk: mean pooling of XTREME_LAYERS, up to 512 tokens
XTREME_RETRIEVAL = RetrievalConfig(max_length=512)
XTREME_PROFILE = "xtreme-defaults"


def resolve_layer(cfg: RetrievalConfig, num_layers: int | None) -> int | None:
    """The ``hidden_states`` index used: ``cfg.layer``, or for ``layer: null`` XTREME's convention
    (:data:`XTREME_LAYERS`; the middle layer of a trunk of another depth)."""
    if cfg.layer is None and num_layers:
        return XTREME_LAYERS.get(num_layers, num_layers // 2)
    return cfg.layer


def _trunk_keys(name: str) -> set[str]:
    """The names one trunk goes by: registered name, hub id; for a phase-2 trunk folder, those of the trunk
    it was trained from (its ``phase2.yaml``)."""
    load_plugins()
    keys = {name}
    record = Path(name).expanduser().parent / "phase2.yaml"
    if Path(name).expanduser().is_dir() and record.is_file():
        trained_from = (config.read_yaml(record).get("trunk") or {}).get("name")
        if trained_from:
            keys |= _trunk_keys(str(trained_from))
    if name in TRUNKS:
        entry = TRUNKS.get(name)
        keys |= {entry.name} | ({entry.hub_id} if entry.hub_id else set())
    for trunk_name, entry in TRUNKS.items():
        if getattr(entry, "hub_id", None) == name:
            keys.add(trunk_name)
    return keys


def trunk_profile(
    trunk: str, profile: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> ExperimentConfig:
    """The profile whose settings evaluate ``trunk``: ``profile`` when given, else the shipped profile that
    defines that trunk (``xlm-roberta-large`` -> xlmr-large), else XTREME's retrieval settings."""
    if profile:
        return config.load_profile(profile, overrides)
    keys = _trunk_keys(trunk)
    for name in config.named_configs("profiles"):
        candidate = config.load_profile(name)
        if _trunk_keys(candidate.trunk.name) & keys:
            return config.load_profile(name, overrides)
    base = {
        "name": XTREME_PROFILE,
        "description": "XTREME retrieval settings (no profile defines this trunk)",
        "trunk": {"name": trunk},
        "retrieval": to_dict(XTREME_RETRIEVAL),
    }
    return config.load(ExperimentConfig, None, overrides, base=base)


def retrieval_max_length(profile: ExperimentConfig) -> int:
    """Tokens embedded per sentence: ``retrieval.max_length``, else ``trunk.max_length``."""
    return profile.retrieval.max_length or profile.trunk.max_length


def describe(
    profile: ExperimentConfig,
    layer: int | None,
    num_layers: int | None,
    max_length: int | None = None,
) -> str:
    """One line naming the retrieval settings a trunk is evaluated with and where they come from."""
    cfg = profile.retrieval
    max_length = max_length or retrieval_max_length(profile)
    where = "last layer" if layer in (None, -1) else f"hidden_states[{layer}]"
    depth = f" of {num_layers} layers" if num_layers else ""
    return (
        f"retrieval settings (profile {profile.name}): layer {layer} = {where}{depth}, pooling {cfg.pooling}, "
        f"max_length {max_length}, prefix {cfg.prefix!r}, margin {cfg.margin}, k {cfg.k}, "
        f"direction {cfg.direction}, comparison by {cfg.comparison}, threshold {cfg.threshold_source}"
    )


def settings_of(
    cfg: RetrievalConfig,
    *,
    layer: int | None,
    trunk: str | None = None,
    max_length: int | None = None,
) -> dict[str, Any]:
    out = {
        "layer": layer,
        "pooling": cfg.pooling,
        "normalize": cfg.normalize,
        "margin": cfg.margin,
        "k": cfg.k,
        "direction": cfg.direction,
        "threshold_source": cfg.threshold_source,
        "prefix": cfg.prefix,
        "comparison": cfg.comparison,
    }
    if trunk is not None:
        out["trunk"] = trunk
    if max_length is not None:
        out["max_length"] = max_length
    return out


def trunk_embedder(
    model: Any,
    tokenizer: Any,
    cfg: RetrievalConfig,
    *,
    max_length: int = 128,
    device: str | None = None,
    precision: str = "no",
) -> tuple[Embedder, int | None]:
    """An embedder calling :func:`mmxfer.models.embed.encode` with ``cfg``; returns it and the layer used.
    ``max_length`` is capped at the tokenizer's own limit; the embedder's ``max_length`` says what was used.
    ``precision``: ``no`` (fp32), ``bf16``, or ``auto`` (bf16 autocast where the hardware has native bf16)."""
    layer = resolve_layer(cfg, getattr(getattr(model, "config", None), "num_hidden_layers", None))
    # a tokenizer's own limit (512 for XLM-R) is never passed
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        max_length = min(max_length, limit)

    def embed(sentences: list[str]) -> np.ndarray:
        return encode(
            model,
            tokenizer,
            sentences,
            layer=layer,
            pooling=cfg.pooling,
            prefix=cfg.prefix,
            batch_size=cfg.batch_size,
            max_length=max_length,
            normalize=cfg.normalize,
            device=device,
            progress=False,
            precision=precision,
        )

    embed.max_length = max_length  # type: ignore[attr-defined]  # what is recorded with the results
    return embed, layer


def cached(embed: Embedder) -> Embedder:
    """Embed each distinct sentence once (the English side repeats across languages)."""
    memory: dict[str, np.ndarray] = {}

    def wrapper(sentences: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(s for s in sentences if s not in memory))
        if todo:
            for s, v in zip(todo, embed(todo)):
                memory[s] = v
        if not sentences:
            return embed([])
        return np.stack([memory[s] for s in sentences])

    return wrapper


def _directions(cfg: RetrievalConfig) -> list[str]:
    return ["xx-en", "en-xx"] if cfg.direction == "both" else [cfg.direction]


def pair_predictions(
    sources: list[str | None],
    targets: list[str],
    ids: list[Any],
    embed: Embedder,
    cfg: RetrievalConfig,
    metric: str,
) -> list[dict[str, Any]]:
    """Rows ``{id, pred, gold, direction}`` for aligned (source, English target) pairs. A row without a source
    is an English candidate only (a distractor: FLORES sentences outside the evaluated split, as xSIM++ enlarges
    the English side): the English side is searched among every target, each source among the sources; ``pred``
    and ``gold`` are row indices, a query's gold is its own row - or, with ``cfg.comparison == "text"``, where
    that row's sentence appears on several rows of the searched side, the list of them (any is a correct
    retrieval, LASER's default).
    """
    if len(sources) != len(targets):
        raise DataError(f"retrieval: {len(sources)} source sentences but {len(targets)} targets")
    aligned = [i for i, s in enumerate(sources) if s is not None]
    if not aligned:
        raise DataError("retrieval: no sentence pairs")
    src, tgt = embed([sources[i] for i in aligned]), embed(list(targets))
    rows_of = np.asarray(aligned)
    directions = _directions(cfg)
    if len(directions) == 2:  # one pass over the similarities gives both
        (xx_en, _), (en_xx, _) = retrieval_metrics.retrieve_both(
            src, tgt, cfg.margin, cfg.k, normalize=cfg.normalize
        )
        preds = {"xx-en": xx_en, "en-xx": rows_of[en_xx[rows_of]]}
    elif directions[0] == "xx-en":
        preds = {
            "xx-en": retrieval_metrics.retrieve(
                src, tgt, cfg.margin, cfg.k, normalize=cfg.normalize
            )[0]
        }
    else:
        if len(aligned) != len(targets):
            raise DataError(
                "retrieval: en-xx alone searches the sources with each English sentence; with English "
                "candidates that have no source, use direction xx-en or both"
            )
        preds = {
            "en-xx": retrieval_metrics.retrieve(
                tgt, src, cfg.margin, cfg.k, normalize=cfg.normalize
            )[0]
        }
    # the searched side of each direction, with the row index each of its entries has in the pair list
    searched = {
        "xx-en": (list(targets), np.arange(len(targets))),
        "en-xx": ([sources[i] for i in aligned], rows_of),
    }
    rows: list[dict[str, Any]] = []
    for direction in directions:
        texts, row_index = searched[direction]
        if cfg.comparison == "text":
            golds = {
                int(row_index[j]): (
                    [int(row_index[x]) for x in g] if isinstance(g, list) else int(row_index[g])
                )
                for j, g in enumerate(retrieval_metrics.equal_text_rows(texts))
            }
        else:
            golds = {i: i for i in aligned}
        rows.extend(
            {"id": ids[i], "pred": int(p), "gold": golds[i], "direction": direction}
            for i, p in zip(aligned, preds[direction])
        )
    return rows


def _mining_side(ds: Any) -> tuple[list, list, list, list, set]:
    src_ids, src_txt, tgt_ids, tgt_txt, gold = [], [], [], [], set()
    for ex in ds:
        if ex["side"] == "source":
            src_ids.append(ex["id"])
            src_txt.append(ex["text"])
            if ex.get("gold"):
                gold.add((ex["id"], ex["gold"]))
        else:
            tgt_ids.append(ex["id"])
            tgt_txt.append(ex["text"])
    if not src_ids or not tgt_ids:
        raise DataError("BUCC: a split needs both source and English sentences")
    return src_ids, src_txt, tgt_ids, tgt_txt, gold


def _distinct(ids: list, texts: list[str]) -> tuple[list[str], list[Any]]:
    """XTREME's de-duplication of one side: each distinct sentence is mined once (``text_load_unify``), and a
    sentence found on several lines maps back to no id (``read_sent2id`` drops it, compared after ``strip()``).
    Returns the distinct sentences and the id of each (None for a repeated one)."""
    distinct = list(dict.fromkeys(texts))
    position = {t: i for i, t in enumerate(distinct)}
    lines = Counter(t.strip() for t in texts)
    id_of: list[Any] = [None] * len(distinct)
    for sid, text in zip(ids, texts):
        if lines[text.strip()] == 1:
            id_of[position[text]] = sid
    return distinct, id_of


def mine_ids(
    src_ids: list,
    src_texts: list[str],
    tgt_ids: list,
    tgt_texts: list[str],
    embed: Embedder,
    cfg: RetrievalConfig,
) -> list[tuple[Any, Any, float]]:
    """(source id, English id, margin score) candidates mined as XTREME's ``mine_bitext`` (retrieval 'max') over the
    distinct sentences of each side (:func:`_distinct`), keeping scores above its threshold 0; a candidate with a
    repeated sentence is dropped, as XTREME's ``read_candidate2score`` finds no id for it."""
    src, src_id = _distinct(src_ids, src_texts)
    tgt, tgt_id = _distinct(tgt_ids, tgt_texts)
    cands = retrieval_metrics.mine(
        embed(src), embed(tgt), cfg.k, cfg.margin, normalize=cfg.normalize
    )
    return [
        (src_id[s], tgt_id[t], sc)
        for s, t, sc in cands
        if sc > 0 and src_id[s] is not None and tgt_id[t] is not None
    ]


def mining_predictions(
    dev: Any, test: Any, embed: Embedder, cfg: RetrievalConfig
) -> tuple[list[dict], float]:
    """BUCC rows (one per test source sentence) and the threshold, chosen per ``cfg.threshold_source``."""
    if cfg.threshold_source == "dev" and dev is None:
        raise DataError("BUCC: threshold_source is 'dev' but there is no dev (sample) split")
    t_src_ids, t_src, t_tgt_ids, t_tgt, t_gold = _mining_side(test)
    test_cands = mine_ids(t_src_ids, t_src, t_tgt_ids, t_tgt, embed, cfg)
    if cfg.threshold_source == "dev":
        d_src_ids, d_src, d_tgt_ids, d_tgt, d_gold = _mining_side(dev)
        threshold = retrieval_metrics.optimize_threshold(
            mine_ids(d_src_ids, d_src, d_tgt_ids, d_tgt, embed, cfg), d_gold
        )
    elif cfg.threshold_source == "test-oracle":  # the test candidates themselves, mined once
        threshold = retrieval_metrics.optimize_threshold(test_cands, t_gold)
    else:  # pragma: no cover - RetrievalConfig validates the literal
        raise ConfigError(f"unknown threshold_source {cfg.threshold_source!r}")
    extracted = {s: [s, t] for s, t, sc in test_cands if sc >= threshold}
    gold_of = dict(t_gold)
    rows = [
        {
            "id": sid,
            "pred": extracted.get(sid),
            "gold": [sid, gold_of[sid]] if sid in gold_of else None,
        }
        for sid in t_src_ids
    ]
    return rows, float(threshold)

"""Readers for the official release formats, each returning canonical rows (plain dicts).

One function per format; they know nothing about TaskSpecs beyond the path they are given.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmxfer.errors import DataError
from mmxfer.tasks.common import read_lines, read_text

NLI_LABELS = ("entailment", "neutral", "contradiction")
_NLI_ALIASES = {"contradictory": "contradiction", "e": "entailment", "n": "neutral", "c": "contradiction"}


def nli_label(value: str, path: Path) -> int:
    name = _NLI_ALIASES.get(value.strip(), value.strip())
    if name not in NLI_LABELS:
        raise DataError(f"{path}: unknown NLI label {value!r} (expected one of {', '.join(NLI_LABELS)})")
    return NLI_LABELS.index(name)


def load_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(read_lines(path), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n} is not valid JSON: {exc}") from None
    return out


def read_tsv(path: Path, *, header: bool = True, quoting: int = csv.QUOTE_NONE) -> list[dict[str, str]]:
    """Rows of a TSV file as dicts (``header=False``: keys are column indices as strings)."""
    reader = csv.reader(io.StringIO(read_text(path)), delimiter="\t", quoting=quoting)
    rows = [r for r in reader if r]
    if not rows:
        return []
    if not header:
        return [{str(i): v for i, v in enumerate(r)} for r in rows]
    head = rows[0]
    return [dict(zip(head, r)) for r in rows[1:]]


def require(row: dict[str, Any], keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; it has {', '.join(map(str, row))}")


# --- bitext -------------------------------------------------------------------------------------

def aligned_pairs(src_path: Path, trg_path: Path) -> list[dict[str, str]]:
    """Line-aligned bitext (Tatoeba ``tatoeba.xxx-eng.{xxx,eng}``, FLORES, Multi30K)."""
    src, trg = read_lines(src_path), read_lines(trg_path)
    if len(src) != len(trg):
        raise DataError(f"{src_path} has {len(src)} lines but {trg_path} has {len(trg)}; they must be aligned")
    return [{"id": str(i), "source": s, "target": t} for i, (s, t) in enumerate(zip(src, trg))]


def english_sibling(src_path: Path, english_name: str, what: str) -> Path:
    """The English file ``english_name`` beside ``src_path`` (gzipped when the source is: ``.gz`` appended);
    ``what`` names the pair in the error when it is missing (Tatoeba, Multi30K and BUCC ship both sides
    side by side)."""
    trg_path = src_path.with_name(english_name + (".gz" if src_path.suffix == ".gz" else ""))
    if not trg_path.exists():
        raise DataError(f"{what}: {src_path} has no English side {trg_path.name} next to it")
    return trg_path


def bitext_with_english_sibling(src_path: Path, english_name: str, what: str) -> list[dict[str, str]]:
    """Line-aligned pairs of ``src_path`` and its English sibling (see :func:`english_sibling`)."""
    return aligned_pairs(src_path, english_sibling(src_path, english_name, what))


def bucc_rows(src_path: Path, trg_path: Path, gold_path: Path | None) -> list[dict[str, str]]:
    """BUCC 2018 release: ``{xx}-en.{split}.{xx|en}`` lines ``<id>\\t<sentence>`` + ``.gold`` id pairs."""
    gold: dict[str, str] = {}
    if gold_path is not None:
        for line in read_lines(gold_path):
            if line.strip():
                parts = line.split("\t")
                if len(parts) != 2:
                    raise DataError(f"{gold_path}: expected '<src id>\\t<en id>', got {line[:80]!r}")
                gold[parts[0]] = parts[1]
                gold[parts[1]] = parts[0]
    rows = []
    for side, path in (("source", src_path), ("target", trg_path)):
        for line in read_lines(path):
            if not line.strip():
                continue
            sid, sep, text = line.partition("\t")
            if not sep:
                raise DataError(f"{path}: expected '<id>\\t<sentence>', got {line[:80]!r}")
            rows.append({"id": sid, "side": side, "text": text, "gold": gold.get(sid, "")})
    return rows


# --- QA -----------------------------------------------------------------------------------------

def squad_rows(path: Path, *, id_prefix: str | None = None) -> list[dict[str, Any]]:
    """SQuAD-format JSON (SQuAD 1.1/2.0, XQuAD, MLQA, TyDiQA-GoldP): one row per question."""
    data = load_json(path)
    if not isinstance(data, dict) or "data" not in data:
        raise DataError(f"{path} is not SQuAD-format JSON (no top-level 'data')")
    rows = []
    for article in data["data"]:
        for para in article.get("paragraphs", []):
            context = para["context"]
            for qa in para.get("qas", []):
                if id_prefix and not str(qa["id"]).startswith(id_prefix):
                    continue
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                rows.append({"id": str(qa["id"]), "context": context, "question": qa["question"],
                             "answers": {"text": [a["text"] for a in answers],
                                         "answer_start": [int(a["answer_start"]) for a in answers]}})
    return rows


# --- tagging ------------------------------------------------------------------------------------

#: XTREME's span-head tie-break for multi-word tokens (third_party/ud-conversion-tools/conllu_to_conll.py)
MWT_POS_PRECEDENCE: dict[str, tuple[str, ...]] = {
    "default": ("VERB", "NOUN", "PROPN", "PRON", "ADJ", "NUM", "ADV", "INTJ", "AUX", "ADP", "DET", "PART", "CCONJ",
                "SCONJ", "X", "PUNCT"),
    "es": ("VERB", "AUX", "PRON", "ADP", "DET"),
    "fr": ("VERB", "AUX", "PRON", "NOUN", "ADJ", "ADV", "ADP", "DET", "PART", "SCONJ", "CONJ"),
    "it": ("VERB", "AUX", "ADV", "PRON", "ADP", "DET", "INTJ"),
}


def _ancestors(parents: dict[int, set[int]], node: int) -> int:
    """How many nodes reach ``node`` along head edges (basic and enhanced), as ``networkx.ancestors`` counts."""
    seen: set[int] = set()
    todo = list(parents.get(node, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(parents.get(n, ()))
    seen.discard(node)
    return len(seen)


def _span_head(span: list[int], parents: dict[int, set[int]], upos: dict[int, str], precedence: tuple[str, ...]) -> int:
    """XTREME's head of a multi-word token: the word of the span with the fewest ancestors; ties go to the
    best-ranked UPOS of ``precedence`` (first in the span among equals; unranked tags after every ranked one)."""
    depth = {w: _ancestors(parents, w) for w in span}
    top = min(depth.values())
    highest = [w for w in span if depth[w] == top]
    if len(highest) == 1:
        return highest[0]
    rank = {tag: i for i, tag in enumerate(precedence)}
    return min(highest, key=lambda w: rank.get(upos[w], len(precedence)))


def _keep_sentence(forms: list[str]) -> bool:
    """XTREME drops a sentence whose words are all, or all but one, ``_`` (treebanks released without text)."""
    empty = sum(w == "_" for w in forms)
    return empty == 0 or empty < len(forms) - 1


def _clean_word(word: str) -> str:
    """XTREME's ``remove_empty_space``: no zero-width non-joiner and no space inside a word."""
    return "".join(word.replace("\u200c", "").split(" "))


def conllu_sentences(path: Path, *, column: int = 3, lang: str | None = None) -> list[dict[str, Any]]:
    """CoNLL-U words with their UPOS (column 4), read as XTREME reads UD for UDPOS.

    A multi-word token (``4-5 della``) replaces its syntactic words by its surface form, tagged with the UPOS
    of the span head (``conllu_to_conll.py --replace_subtokens_with_fused_forms``; ``lang`` picks the tie-break
    list); empty nodes (``8.1``) and comments are skipped; sentences whose words are all or all but one ``_`` are
    dropped; zero-width non-joiners and spaces inside words are removed (``utils_preprocess.py``).
    """
    precedence = MWT_POS_PRECEDENCE.get(lang or "", MWT_POS_PRECEDENCE["default"])
    rows: list[dict[str, Any]] = []
    words: dict[int, tuple[str, str]] = {}
    parents: dict[int, set[int]] = {}
    fused: list[tuple[int, int, str]] = []
    sent_id: str | None = None
    sentence_no = 0

    def flush() -> None:
        nonlocal words, parents, fused, sent_id, sentence_no
        if words:
            forms = {w: f for w, (f, _) in words.items()}
            tags = {w: t for w, (_, t) in words.items()}
            dropped: set[int] = set()
            for start, end, form in fused:
                span = [w for w in range(start, end + 1) if w in words]
                if not span:
                    continue
                head = _span_head(span, parents, tags, precedence)
                forms[head] = form
                dropped.update(w for w in span if w != head)
            order = [w for w in sorted(words) if w not in dropped]
            tokens = [forms[w] for w in order]
            if _keep_sentence(tokens):
                rows.append({"id": sent_id or f"{path.stem}-{sentence_no}", "tokens": [_clean_word(t) for t in tokens],
                             "tags": [tags[w] for w in order]})
            sentence_no += 1
        words, parents, fused, sent_id = {}, {}, [], None

    for n, line in enumerate(read_lines(path) + [""], 1):
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            if line.startswith("# sent_id"):
                sent_id = line.split("=", 1)[-1].strip()
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise DataError(f"{path}:{n}: a CoNLL-U line has 10 tab-separated columns, this one has {len(cols)}")
        if "." in cols[0]:
            continue
        if "-" in cols[0]:
            start, _, end = cols[0].partition("-")
            fused.append((int(start), int(end), cols[1]))
            continue
        word = int(cols[0])
        words[word] = (cols[1], cols[column])
        heads = {int(cols[6])} if cols[6].isdigit() else set()
        heads |= {int(d.split(":", 1)[0]) for d in cols[8].split("|") if d.split(":", 1)[0].isdigit()}
        parents[word] = heads
    return rows


def panx_sentences(path: Path, lang: str) -> list[dict[str, Any]]:
    """PAN-X as XTREME ships it: ``lang:token<TAB>TAG`` lines, blank line between sentences."""
    rows, tokens, tags = [], [], []
    prefix = f"{lang}:"
    for n, line in enumerate(read_lines(path) + [""], 1):
        if not line.strip():
            if tokens:
                rows.append({"id": f"{lang}-{len(rows)}", "tokens": tokens, "tags": tags})
            tokens, tags = [], []
            continue
        parts = line.split("\t") if "\t" in line else line.rsplit(" ", 1)
        if len(parts) != 2:
            raise DataError(f"{path}:{n}: expected '{prefix}token<TAB>TAG', got {line[:80]!r}")
        token, tag = parts
        tokens.append(token[len(prefix):] if token.startswith(prefix) else token)
        tags.append(tag.strip())
    return rows


def stagged_sentences(path: Path) -> list[dict[str, Any]]:
    """CCGbank supertags, one sentence a line of ``word|POS|CATEGORY`` tokens."""
    rows = []
    for n, line in enumerate(read_lines(path), 1):
        if not line.strip() or line.startswith("#"):
            continue
        tokens, tags = [], []
        for item in line.split(" "):
            parts = item.split("|")
            if len(parts) < 3:
                raise DataError(f"{path}:{n}: expected 'word|POS|CATEGORY' tokens, got {item[:60]!r}")
            tokens.append(parts[0])
            tags.append(parts[-1])
        rows.append({"id": str(len(rows)), "tokens": tokens, "tags": tags})
    return rows


# --- images -------------------------------------------------------------------------------------

def image_path(root: Path, *candidates: str) -> str:
    """The first candidate under ``root`` that exists, else the first (missing images are handled later)."""
    for rel in candidates:
        if (root / rel).is_file():
            return str(root / rel)
    return str(root / candidates[0])


def vqa_v2_rows(questions: Path, annotations: Path | None, image_root: Path, coco_split: str) -> list[dict[str, Any]]:
    """VQAv2 release: ``v2_OpenEnded_mscoco_<split>_questions.json`` + ``v2_mscoco_<split>_annotations.json``."""
    qdata = load_json(questions)
    answers: dict[int, list[str]] = {}
    if annotations is not None:
        for ann in load_json(annotations).get("annotations", []):
            answers[ann["question_id"]] = [a["answer"] for a in ann["answers"]]
    rows = []
    for q in qdata.get("questions", []):
        name = f"COCO_{coco_split}_{int(q['image_id']):012d}.jpg"
        rows.append({"id": str(q["question_id"]), "image_id": str(q["image_id"]), "question": q["question"],
                     "answers": answers.get(q["question_id"], []),
                     "image": image_path(image_root, f"{coco_split}/{name}", name, f"images/{coco_split}/{name}")})
    return rows


def textvqa_rows(path: Path, image_root: Path) -> list[dict[str, Any]]:
    """TextVQA JSON (``{"data": [{question, image_id, answers, question_id}]}``); images ``<image_id>.jpg``."""
    data = load_json(path)
    rows = []
    for q in data.get("data", []):
        name = f"{q['image_id']}.jpg"
        rows.append({"id": str(q["question_id"]), "image_id": str(q["image_id"]), "question": q["question"],
                     "answers": list(q.get("answers", [])),
                     "image": image_path(image_root, f"train_images/{name}", f"test_images/{name}", name)})
    return rows


def karpathy_rows(path: Path, image_root: Path, split: str) -> Iterator[dict[str, Any]]:
    """Karpathy ``dataset_coco.json`` / ``dataset_flickr30k.json``: one row per (image, caption).

    ``train`` includes COCO's ``restval`` images, as in the usual Karpathy-split training set.
    """
    data = load_json(path)
    wanted = {"train": ("train", "restval"), "validation": ("val",), "test": ("test",)}[split]
    for img in data.get("images", []):
        if img.get("split") not in wanted:
            continue
        rel = f"{img['filepath']}/{img['filename']}" if img.get("filepath") else img["filename"]
        image = image_path(image_root, rel, img["filename"], f"images/{img['filename']}",
                           f"flickr30k-images/{img['filename']}")
        key = img.get("cocoid", img.get("imgid"))
        for k, sent in enumerate(img.get("sentences", [])):
            yield {"id": f"{key}-{k}", "image_id": str(key), "image": image, "caption": sent["raw"].strip()}

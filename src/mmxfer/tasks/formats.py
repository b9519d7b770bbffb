"""Readers for the official release formats, each returning canonical rows (plain dicts).

One function per format; they know nothing about TaskSpecs beyond the path they are given.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmxfer.errors import DataError
from mmxfer.tasks.common import check_line_lengths, read_lines, read_text

log = logging.getLogger(__name__)

NLI_LABELS = ("entailment", "neutral", "contradiction")
_NLI_ALIASES = {
    "contradictory": "contradiction",
    "e": "entailment",
    "n": "neutral",
    "c": "contradiction",
}


def nli_label(value: str, path: Path) -> int:
    name = _NLI_ALIASES.get(value.strip(), value.strip())
    if name not in NLI_LABELS:
        raise DataError(
            f"{path}: unknown NLI label {value!r} (expected one of {', '.join(NLI_LABELS)})"
        )
    return NLI_LABELS.index(name)


def load_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply") from None


class Row(dict):
    """One record of a line-based release file, with the line it ends on (``line``) for messages."""

    line: int = 0


def located(path: Path, row: dict[str, Any]) -> str:
    """``path:line`` of a :class:`Row` (``path`` alone for a row without one), for messages."""
    line = getattr(row, "line", 0)
    return f"{path}:{line}" if line else str(path)


@contextlib.contextmanager
def record(where: str) -> Iterator[None]:
    """Around the reading of one record of a release file (``where``: the file and its line or index): a key the
    record lacks, or a value of another type than its format's (a label that is not a number, a text that is a
    list), becomes one DataError naming the record, not a traceback from the reader's indexing."""
    try:
        yield
    except KeyError as exc:
        raise DataError(
            f"{where}: no {exc.args[0]!r}, which every record of this format has"
        ) from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise DataError(f"{where}: a value that is not of this format ({exc})") from None


def record_list(data: Any, key: str, path: Path) -> list[Any]:
    """The list ``data[key]`` of a release JSON file (absent: none), else one DataError."""
    records = data.get(key, []) if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON object whose {key!r} is a list")
    return records


def text_value(value: Any) -> str:
    """``value`` when it is a text (read inside :func:`record`, a TypeError becomes the record's message)."""
    if not isinstance(value, str):
        raise TypeError(f"expected a text, got {type(value).__name__}")
    return value


def read_jsonl(path: Path, *, columns: tuple[str, ...] = ()) -> list[Row]:
    """The JSON objects of a JSON-lines file (blank lines skipped), each holding every key of ``columns``; anything
    else is one DataError naming the line."""
    out = []
    for n, line in enumerate(read_lines(path), 1):
        if line.strip():
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n} is not valid JSON: {exc}") from None
            except RecursionError:
                raise DataError(f"{path}:{n}: JSON nested too deeply") from None
            if not isinstance(value, dict):
                raise DataError(f"{path}:{n}: expected a JSON object, got {type(value).__name__}")
            row = _row(value, n)
            require(row, columns, path)
            out.append(row)
    return out


#: how a message names the fields of a row, by delimiter
_SEPARATED = {"\t": "tab-separated", ",": "comma-separated"}


def read_tsv(
    path: Path,
    *,
    header: bool = True,
    quoting: int = csv.QUOTE_NONE,
    columns: tuple[str, ...] = (),
    skip_short: str = "",
    delimiter: str = "\t",
) -> list[Row]:
    """Rows of a TSV file (``delimiter=","`` with ``csv.QUOTE_MINIMAL``: a CSV file) as dicts (``header=False``: keys
    are column indices as strings), each with its ``line``.

    The header must name every column of ``columns``, and every row must have as many fields as the header: else
    one DataError naming the line, unless ``skip_short`` names the official reader that skips rows with too few
    fields (they are then left out, counted in one log line)."""
    text = read_text(path)
    check_line_lengths(text, path)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting)
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if fields:
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise DataError(
            f"{path}:{reader.line_num + 1}: not a row of {_SEPARATED.get(delimiter, 'delimited')} "
            f"fields ({exc})"
        ) from None
    if not rows:
        return []
    if not header:
        return [_row({str(i): v for i, v in enumerate(r)}, n) for n, r in rows]
    (_, head), body = rows[0], rows[1:]
    missing = [c for c in columns if c not in head]
    if missing:
        raise DataError(
            f"{path}:{rows[0][0]}: missing column(s) {', '.join(missing)}; the header has {', '.join(head)}"
        )
    out, short = [], 0
    for n, fields in body:
        if len(fields) != len(head):
            if skip_short and len(fields) < len(head):
                short += 1
                continue
            raise DataError(
                f"{path}:{n}: {len(fields)} {_SEPARATED.get(delimiter, 'delimited')} field(s), the "
                f"header has {len(head)} ({', '.join(head)})"
            )
        out.append(_row(dict(zip(head, fields)), n))
    if short:
        log.warning(
            "%s: %d row(s) with fewer fields than the header left out, as %s does",
            path,
            short,
            skip_short,
        )
    return out


def _row(values: dict[str, Any], line: int) -> Row:
    row = Row(values)
    row.line = line
    return row


def require(row: dict[str, Any], keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise DataError(
            f"{located(path, row)}: missing column(s) {', '.join(missing)}; it has {', '.join(map(str, row))}"
        )


def check_unique(rows: list[Row], key: str, path: Path, what: str = "") -> None:
    """Every row's ``key`` differs from every other's (a repeated id would be scored as if it were another
    example): else one DataError naming both lines."""
    seen: dict[str, int] = {}
    for row in rows:
        value = row[key]
        if value in seen:
            raise DataError(
                f"{located(path, row)}: {what or key} {value!r} appears again (first on line "
                f"{seen[value]}); each must be unique"
            )
        seen[value] = row.line


def check_integer_ids(rows: list[Row], key: str, path: Path) -> None:
    """Every row's ``key`` is a whole number (as the release writes them): else one DataError naming the line."""
    for row in rows:
        if not str(row[key]).strip().isdigit():
            raise DataError(f"{located(path, row)}: {key} {row[key]!r} is not a number")


# --- bitext -------------------------------------------------------------------------------------


def aligned_pairs(src_path: Path, trg_path: Path) -> list[dict[str, str]]:
    """Line-aligned bitext (Tatoeba ``tatoeba.xxx-eng.{xxx,eng}``, FLORES, Multi30K)."""
    src, trg = read_lines(src_path), read_lines(trg_path)
    if len(src) != len(trg):
        raise DataError(
            f"{src_path} has {len(src)} lines but {trg_path} has {len(trg)}; they must be aligned"
        )
    return [{"id": str(i), "source": s, "target": t} for i, (s, t) in enumerate(zip(src, trg))]


def english_sibling(src_path: Path, english_name: str, what: str) -> Path:
    """The English file ``english_name`` beside ``src_path`` (gzipped when the source is: ``.gz`` appended);
    ``what`` names the pair in the error when it is missing (Tatoeba, Multi30K and BUCC ship both sides
    side by side)."""
    trg_path = src_path.with_name(english_name + (".gz" if src_path.suffix == ".gz" else ""))
    if not trg_path.exists():
        raise DataError(f"{what}: {src_path} has no English side {trg_path.name} next to it")
    return trg_path


def bitext_with_english_sibling(
    src_path: Path, english_name: str, what: str
) -> list[dict[str, str]]:
    """Line-aligned pairs of ``src_path`` and its English sibling (see :func:`english_sibling`)."""
    return aligned_pairs(src_path, english_sibling(src_path, english_name, what))


def bucc_rows(src_path: Path, trg_path: Path, gold_path: Path | None) -> list[dict[str, str]]:
    """BUCC 2018 release: ``{xx}-en.{split}.{xx|en}`` lines ``<id>\\t<sentence>`` + ``.gold`` id pairs; an id
    repeated within its file is an error naming both lines."""
    gold: dict[str, str] = {}
    if gold_path is not None:
        for n, line in enumerate(read_lines(gold_path), 1):
            if line.strip():
                parts = line.split("\t")
                if len(parts) != 2:
                    raise DataError(
                        f"{gold_path}:{n}: expected '<src id>\\t<en id>', got {line[:80]!r}"
                    )
                gold[parts[0]] = parts[1]
                gold[parts[1]] = parts[0]
    rows = []
    for side, path in (("source", src_path), ("target", trg_path)):
        seen: dict[str, int] = {}
        for n, line in enumerate(read_lines(path), 1):
            if not line.strip():
                continue
            sid, sep, text = line.partition("\t")
            if not sep or not sid.strip():
                raise DataError(f"{path}:{n}: expected '<id>\\t<sentence>', got {line[:80]!r}")
            if sid in seen:
                raise DataError(
                    f"{path}:{n}: sentence id {sid!r} appears again (first on line {seen[sid]}); each "
                    f"must be unique"
                )
            seen[sid] = n
            rows.append({"id": sid, "side": side, "text": text, "gold": gold.get(sid, "")})
    return rows


# --- QA -----------------------------------------------------------------------------------------


def squad_rows(path: Path, *, id_prefix: str | None = None) -> list[dict[str, Any]]:
    """SQuAD-format JSON (SQuAD 1.1/2.0, XQuAD, MLQA, TyDiQA-GoldP): one row per question.

    Each question must have an ``id`` (unique in the file), a ``question`` and answers of ``text`` and a whole-number
    ``answer_start`` >= 0: else one DataError naming the file and the question. An ``answer_start`` that does not
    point at its answer is kept: evaluation reads only the answer texts, and training leaves such questions out as
    XTREME does (:meth:`mmxfer.kinds.span_qa.SpanQA.trainable`)."""
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(f"{path} is not SQuAD-format JSON (no top-level 'data' list)")
    rows = []
    seen: dict[str, int] = {}
    for a, article in enumerate(data["data"]):
        paragraphs = article.get("paragraphs", []) if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{path}: data[{a}] is not an article with a 'paragraphs' list")
        for p, para in enumerate(paragraphs):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            if not isinstance(para, dict) or not isinstance(para.get("context"), str):
                raise DataError(f"{where} has no 'context' text")
            context = para["context"]
            qas = para.get("qas", [])
            if not isinstance(qas, list):
                raise DataError(f"{where}: 'qas' is not a list")
            for q, qa in enumerate(qas):
                if (
                    not isinstance(qa, dict)
                    or "id" not in qa
                    or not isinstance(qa.get("question"), str)
                ):
                    raise DataError(
                        f"{where}.qas[{q}]: a question needs an 'id' and a 'question' text"
                    )
                qid = str(qa["id"])
                if qid in seen:
                    raise DataError(
                        f"{path}: question id {qid!r} appears twice (questions {seen[qid]} and "
                        f"{len(seen) + 1} of the file); each must be unique"
                    )
                seen[qid] = len(seen) + 1
                if id_prefix and not qid.startswith(id_prefix):
                    continue
                answers = (
                    []
                    if qa.get("is_impossible")
                    else _answers(qa.get("answers", []), f"{path}: question {qid!r}")
                )
                rows.append(
                    {
                        "id": qid,
                        "context": context,
                        "question": qa["question"],
                        "answers": {
                            "text": [t for t, _ in answers],
                            "answer_start": [s for _, s in answers],
                        },
                    }
                )
    return rows


def _answers(answers: Any, where: str) -> list[tuple[str, int]]:
    if not isinstance(answers, list):
        raise DataError(f"{where}: 'answers' is not a list")
    out = []
    for answer in answers:
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise DataError(f"{where}: an answer without a 'text'")
        start = answer.get("answer_start")
        if isinstance(start, str) and start.strip().isdigit():
            start = int(start)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise DataError(
                f"{where}: answer_start {start!r} is not a character offset (a whole number >= 0)"
            )
        out.append((answer["text"], start))
    return out


# --- tagging ------------------------------------------------------------------------------------

#: XTREME's span-head tie-break for multi-word tokens (third_party/ud-conversion-tools/conllu_to_conll.py)
MWT_POS_PRECEDENCE: dict[str, tuple[str, ...]] = {
    "default": (
        "VERB",
        "NOUN",
        "PROPN",
        "PRON",
        "ADJ",
        "NUM",
        "ADV",
        "INTJ",
        "AUX",
        "ADP",
        "DET",
        "PART",
        "CCONJ",
        "SCONJ",
        "X",
        "PUNCT",
    ),
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


def _span_head(
    span: list[int], parents: dict[int, set[int]], upos: dict[int, str], precedence: tuple[str, ...]
) -> int:
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


#: a CoNLL-U token id: a word number, a multi-word range (``4-5``) or an empty node (``8.1``)
_CONLLU_ID = re.compile(r"(?P<word>[0-9]+)(?:-(?P<end>[0-9]+)|\.(?P<empty>[0-9]+))?")


def conllu_sentences(
    path: Path, *, column: int = 3, lang: str | None = None
) -> list[dict[str, Any]]:
    """CoNLL-U words with their UPOS (column 4), read as XTREME reads UD for UDPOS.

    A multi-word token (``4-5 della``) replaces its syntactic words by its surface form, tagged with the UPOS
    of the span head (``conllu_to_conll.py --replace_subtokens_with_fused_forms``; ``lang`` picks the tie-break
    list); empty nodes (``8.1``) and comments are skipped; sentences whose words are all or all but one ``_`` are
    dropped; zero-width non-joiners and spaces inside words are removed (``utils_preprocess.py``). A token id that is
    none of a word number, a range and an empty node, a word id twice in a sentence and a ``sent_id`` twice in the
    file are errors naming the line.
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
                rows.append(
                    {
                        "id": sent_id or f"{path.stem}-{sentence_no}",
                        "tokens": [_clean_word(t) for t in tokens],
                        "tags": [tags[w] for w in order],
                    }
                )
            sentence_no += 1
        words, parents, fused, sent_id = {}, {}, [], None

    sent_lines: dict[str, int] = {}
    for n, line in enumerate(read_lines(path) + [""], 1):
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            if line.startswith("# sent_id"):
                sent_id = line.split("=", 1)[-1].strip()
                if sent_id in sent_lines:
                    raise DataError(
                        f"{path}:{n}: sent_id {sent_id!r} appears again (first on line "
                        f"{sent_lines[sent_id]}); each sentence id must be unique"
                    )
                sent_lines[sent_id] = n
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise DataError(
                f"{path}:{n}: a CoNLL-U line has 10 tab-separated columns, this one has {len(cols)}"
            )
        token_id = _CONLLU_ID.fullmatch(cols[0])
        if token_id is None or (not token_id["empty"] and int(token_id["word"]) == 0):
            raise DataError(
                f"{path}:{n}: token id {cols[0][:40]!r} is not a CoNLL-U id (a word number 1, 2, ..., a "
                f"range such as 4-5, or an empty node such as 8.1)"
            )
        if token_id["empty"]:
            continue
        if token_id["end"]:
            start, end = int(token_id["word"]), int(token_id["end"])
            if end <= start:
                raise DataError(
                    f"{path}:{n}: multi-word token range {cols[0]!r} does not go forward"
                )
            fused.append((start, end, cols[1]))
            continue
        word = int(token_id["word"])
        if word in words:
            raise DataError(f"{path}:{n}: word id {word} appears twice in one sentence")
        words[word] = (cols[1], cols[column])
        heads = {int(cols[6])} if cols[6].isdigit() else set()
        heads |= {
            int(d.split(":", 1)[0]) for d in cols[8].split("|") if d.split(":", 1)[0].isdigit()
        }
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
        tokens.append(token[len(prefix) :] if token.startswith(prefix) else token)
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
                raise DataError(
                    f"{path}:{n}: expected 'word|POS|CATEGORY' tokens, got {item[:60]!r}"
                )
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


def vqa_v2_rows(
    questions: Path, annotations: Path | None, image_root: Path, coco_split: str
) -> list[dict[str, Any]]:
    """VQAv2 release: ``v2_OpenEnded_mscoco_<split>_questions.json`` + ``v2_mscoco_<split>_annotations.json``."""
    qdata = load_json(questions)
    answers: dict[int, list[str]] = {}
    if annotations is not None:
        for i, ann in enumerate(record_list(load_json(annotations), "annotations", annotations)):
            with record(f"{annotations}: annotations[{i}]"):
                answers[ann["question_id"]] = [a["answer"] for a in ann["answers"]]
    rows = []
    for i, q in enumerate(record_list(qdata, "questions", questions)):
        with record(f"{questions}: questions[{i}]"):
            name = f"COCO_{coco_split}_{int(q['image_id']):012d}.jpg"
            rows.append(
                {
                    "id": str(q["question_id"]),
                    "image_id": str(q["image_id"]),
                    "question": text_value(q["question"]),
                    "answers": answers.get(q["question_id"], []),
                    "image": image_path(
                        image_root, f"{coco_split}/{name}", name, f"images/{coco_split}/{name}"
                    ),
                }
            )
    return rows


def textvqa_rows(path: Path, image_root: Path) -> list[dict[str, Any]]:
    """TextVQA JSON (``{"data": [{question, image_id, answers, question_id}]}``); images ``<image_id>.jpg``."""
    rows = []
    for i, q in enumerate(record_list(load_json(path), "data", path)):
        with record(f"{path}: data[{i}]"):
            name = f"{q['image_id']}.jpg"
            rows.append(
                {
                    "id": str(q["question_id"]),
                    "image_id": str(q["image_id"]),
                    "question": text_value(q["question"]),
                    "answers": [text_value(a) for a in q.get("answers", [])],
                    "image": image_path(
                        image_root, f"train_images/{name}", f"test_images/{name}", name
                    ),
                }
            )
    return rows


def karpathy_rows(path: Path, image_root: Path, split: str) -> Iterator[dict[str, Any]]:
    """Karpathy ``dataset_coco.json`` / ``dataset_flickr30k.json``: one row per (image, caption).

    ``train`` includes COCO's ``restval`` images, as in the usual Karpathy-split training set.
    """
    wanted = {"train": ("train", "restval"), "validation": ("val",), "test": ("test",)}[split]
    for i, img in enumerate(record_list(load_json(path), "images", path)):
        with record(f"{path}: images[{i}]"):
            if img.get("split") not in wanted:
                continue
            rel = f"{img['filepath']}/{img['filename']}" if img.get("filepath") else img["filename"]
            image = image_path(
                image_root,
                rel,
                img["filename"],
                f"images/{img['filename']}",
                f"flickr30k-images/{img['filename']}",
            )
            key = img.get("cocoid", img.get("imgid"))
            captions = [
                (k, text_value(sent["raw"]).strip())
                for k, sent in enumerate(img.get("sentences", []))
            ]
        for k, caption in captions:
            yield {"id": f"{key}-{k}", "image_id": str(key), "image": image, "caption": caption}

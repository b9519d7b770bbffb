"""English text intermediate tasks (the STILTs set of Phang et al. 2020) plus SST-2.

Hub sources are the maintained Parquet datasets, each pinned to the commit whose schema was checked
(``mmxfer/resources/hub_contracts.json`` records the pages); every task also reads its original release
files from ``--data-dir`` (see each spec's ``local_format``). HellaSwag's main branch is still a loading
script: it is read from the Parquet conversion of its pull request #7. Cosmos QA exists on the hub only
as a loading script: its release files (``--data-dir``) are the way in.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from mmxfer.errors import DataError
from mmxfer.tasks import formats
from mmxfer.tasks.base import HubSource, Sizes, TaskSpec
from mmxfer.tasks.common import (
    QA_FIELDS,
    dataset_from_rows,
    find_file,
    hub_simple,
    hub_span_qa,
    load_hub,
    make_loader,
    register,
)

EN = ("en",)
GLUE = "nyu-mll/glue"
GLUE_REVISION = (
    "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c"  # a Parquet-only revision (builder 'parquet')
)


def _card(name: str) -> str:
    """Where a task's split sizes come from: the dataset card's metadata (``num_examples``) in the datasets repo."""
    return f"huggingface/datasets@d7dfbc83 datasets/{name}/dataset_infos.json (num_examples)"


# --- NLI / paraphrase / sentiment (classification) ----------------------------------------------


def _hub_pair(spec: TaskSpec, split: str, lang: str):
    ds = hub_simple(spec, split, lang)
    has_b = "text_b" in ds.column_names
    rows = [
        {
            "id": str(ex["id"]),
            "text_a": ex["text_a"],
            "text_b": ex["text_b"] if has_b else None,
            "label": int(ex["label"]),
        }
        for ex in ds
        if int(ex["label"]) >= 0
    ]  # unlabeled test rows carry -1
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _local_mnli(spec: TaskSpec, split: str, lang: str, root: Path):
    names = {
        "train": "train",
        "validation": "dev_matched",
        "validation_mismatched": "dev_mismatched",
    }[split]
    path = find_file(
        root, [f"multinli_1.0_{names}.jsonl", f"MNLI/{names}.tsv", f"{names}.tsv"], spec
    )
    raw = (
        formats.read_jsonl(path)
        if path.name.endswith((".jsonl", ".jsonl.gz"))
        else formats.read_tsv(path)
    )
    rows = []
    for i, r in enumerate(raw):
        formats.require(r, ("sentence1", "sentence2", "gold_label"), path)
        if r["gold_label"] == "-":
            continue
        rows.append(
            {
                "id": str(r.get("pairID", i)),
                "text_a": r["sentence1"],
                "text_b": r["sentence2"],
                "label": formats.nli_label(r["gold_label"], path),
            }
        )
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _local_anli(spec: TaskSpec, split: str, lang: str, root: Path):
    name = {"train": "train", "validation": "dev", "test": "test"}[split]
    rows = []
    for rnd in spec.rounds:
        path = find_file(root, [f"R{rnd}/{name}.jsonl", f"anli_v1.0/R{rnd}/{name}.jsonl"], spec)
        for r in formats.read_jsonl(path):
            formats.require(r, ("uid", "context", "hypothesis", "label"), path)
            rows.append(
                {
                    "id": r["uid"],
                    "text_a": r["context"],
                    "text_b": r["hypothesis"],
                    "label": formats.nli_label(r["label"], path),
                }
            )
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _local_glue_tsv(folder: str, a: str, b: str | None, label: str, skip_short: str = ""):
    """A GLUE TSV reader; ``skip_short``: the official reader that skips rows with too few fields (QQP's)."""

    def local(spec: TaskSpec, split: str, lang: str, root: Path):
        name = {"train": "train", "validation": "dev"}[split]
        path = find_file(root, [f"{folder}/{name}.tsv", f"{name}.tsv"], spec)
        rows = []
        raw = formats.read_tsv(
            path, columns=tuple(c for c in (a, b, label) if c), skip_short=skip_short
        )
        for i, r in enumerate(raw):
            if not r[label].strip().lstrip("-").isdigit():
                raise DataError(f"{path}:{r.line}: label {r[label][:40]!r} is not a number")
            rows.append(
                {
                    "id": r.get("id", str(i)),
                    "text_a": r[a],
                    "text_b": r[b] if b else None,
                    "label": int(r[label]),
                }
            )
        return dataset_from_rows(spec, rows, split=split, lang=lang)

    return local


register(
    TaskSpec(
        name="mnli",
        kind="classification",
        modality="text",
        category="classification",
        version="1.0",
        description="MultiNLI: 3-way entailment over 10 genres (GLUE copy)",
        languages=EN,
        metric="accuracy",
        source=HubSource(
            GLUE,
            "mnli",
            revision=GLUE_REVISION,
            splits={
                "validation": "validation_matched",
                "validation_mismatched": "validation_mismatched",
            },
        ),
        label_names=formats.NLI_LABELS,
        fields={"id": "idx", "text_a": "premise", "text_b": "hypothesis", "label": "label"},
        splits=("train", "validation", "validation_mismatched"),
        head="classification",
        intermediate=True,
        local_format="multinli_1.0_{train,dev_matched,dev_mismatched}.jsonl or GLUE MNLI/{train,dev_matched}.tsv",
        sizes=Sizes(
            {"train": 392702, "validation": 9815, "validation_mismatched": 9832}, _card("glue")
        ),
        loader=make_loader(_hub_pair, _local_mnli),
    ),
    "multinli",
    "multi_nli",
)

register(
    TaskSpec(
        name="anli",
        kind="classification",
        modality="text",
        category="classification",
        version="1.0",
        description="Adversarial NLI, rounds 1-3 concatenated",
        languages=EN,
        metric="accuracy",
        source=HubSource(
            "facebook/anli",
            "plain_text",
            revision="8e4813d81f46d313dac7892e1c28076917cfcdf9",
            splits={
                "train": "train_r1+train_r2+train_r3",
                "validation": "dev_r1+dev_r2+dev_r3",
                "test": "test_r1+test_r2+test_r3",
            },
        ),
        label_names=formats.NLI_LABELS,
        fields={"id": "uid", "text_a": "premise", "text_b": "hypothesis", "label": "label"},
        head="classification",
        intermediate=True,
        extra={"rounds": (1, 2, 3)},
        local_format="anli_v1.0/R{1,2,3}/{train,dev,test}.jsonl",
        sizes=Sizes(
            {"train": 162865, "validation": 3200, "test": 3200},
            _card("anli") + ": rounds 1-3 summed (train 16,946 + 45,460 + 100,459)",
        ),
        loader=make_loader(_hub_pair, _local_anli),
    ),
    "adversarial_nli",
)

register(
    TaskSpec(
        name="qqp",
        kind="classification",
        modality="text",
        category="classification",
        version="1.0",
        description="Quora Question Pairs: duplicate-question detection (GLUE copy)",
        languages=EN,
        metric="accuracy",
        source=HubSource(GLUE, "qqp", revision=GLUE_REVISION),
        label_names=("not_duplicate", "duplicate"),
        fields={"id": "idx", "text_a": "question1", "text_b": "question2", "label": "label"},
        splits=("train", "validation"),
        head="classification",
        intermediate=True,
        local_format="GLUE QQP/{train,dev}.tsv (id qid1 qid2 question1 question2 is_duplicate)",
        sizes=Sizes({"train": 363846, "validation": 40430}, _card("glue")),
        loader=make_loader(
            _hub_pair,
            _local_glue_tsv(
                "QQP",
                "question1",
                "question2",
                "is_duplicate",
                skip_short="transformers' QqpProcessor (data/processors/glue.py)",
            ),
        ),
    ),
    "quora",
)

register(
    TaskSpec(
        name="sst2",
        kind="classification",
        modality="text",
        category="classification",
        version="1.0",
        description="Stanford Sentiment Treebank, binary (GLUE copy)",
        languages=EN,
        metric="accuracy",
        source=HubSource(GLUE, "sst2", revision=GLUE_REVISION),
        label_names=("negative", "positive"),
        fields={"id": "idx", "text_a": "sentence", "label": "label"},
        splits=("train", "validation"),
        head="classification",
        intermediate=True,
        local_format="GLUE SST-2/{train,dev}.tsv (sentence label)",
        sizes=Sizes({"train": 67349, "validation": 872}, _card("glue")),
        loader=make_loader(_hub_pair, _local_glue_tsv("SST-2", "sentence", None, "label")),
    ),
    "sst-2",
    "sst",
)


# --- extractive QA ------------------------------------------------------------------------------


def _local_squad(files: dict[str, str]):
    def local(spec: TaskSpec, split: str, lang: str, root: Path):
        path = find_file(root, [files[split]], spec)
        return dataset_from_rows(spec, formats.squad_rows(path), split=split, lang=lang)

    return local


register(
    TaskSpec(
        name="squad",
        kind="span_qa",
        modality="text",
        category="qa",
        version="1.1",
        description="SQuAD v1.1 extractive QA",
        languages=EN,
        metric="squad",
        source=HubSource(
            "rajpurkar/squad", "plain_text", revision="0a3a8b7b57e8578ec40b2d2bb4c75aca1a6d6ce1"
        ),
        fields=QA_FIELDS,
        splits=("train", "validation"),
        head="span_qa",
        intermediate=True,
        local_format="train-v1.1.json / dev-v1.1.json (SQuAD JSON)",
        sizes=Sizes({"train": 87599, "validation": 10570}, _card("squad")),
        loader=make_loader(
            hub_span_qa(), _local_squad({"train": "train-v1.1.json", "validation": "dev-v1.1.json"})
        ),
    ),
    "squad1",
    "squad_v1",
    "squad1.1",
)

register(
    TaskSpec(
        name="squad_v2",
        kind="span_qa",
        modality="text",
        category="qa",
        version="1.1",
        description="SQuAD v2.0 extractive QA with unanswerable questions",
        languages=EN,
        metric="squad",
        source=HubSource(
            "rajpurkar/squad_v2", "squad_v2", revision="80596c4f2b9ffcd716039dfc7e564c4e491802ec"
        ),
        fields=QA_FIELDS,
        splits=("train", "validation"),
        head="span_qa",
        intermediate=True,
        extra={"allow_null": True},
        local_format="train-v2.0.json / dev-v2.0.json (SQuAD JSON)",
        sizes=Sizes({"train": 130319, "validation": 11873}, _card("squad_v2")),
        loader=make_loader(
            hub_span_qa(), _local_squad({"train": "train-v2.0.json", "validation": "dev-v2.0.json"})
        ),
    ),
    "squad2",
    "squadv2",
)


# --- multiple choice ----------------------------------------------------------------------------


def _mc_rows(spec: TaskSpec, split: str, lang: str, ds_or_rows, convert):
    rows = [r for r in (convert(i, ex) for i, ex in enumerate(ds_or_rows)) if r is not None]
    return dataset_from_rows(spec, rows, split=split, lang=lang)


def _hellaswag_row(i: int, ex: dict[str, Any]) -> dict[str, Any] | None:
    if str(ex.get("label", "")).strip() == "":
        return None
    return {
        "id": str(ex.get("ind", i)),
        "context": ex["ctx_a"],
        "question": ex["ctx_b"],
        "choices": list(ex["endings"]),
        "label": int(ex["label"]),
    }


def _csqa_row(i: int, ex: dict[str, Any]) -> dict[str, Any] | None:
    q = ex["question"]
    if isinstance(q, dict):  # original release: {"stem", "choices": [{"label", "text"}]}
        labels = [c["label"] for c in q["choices"]]
        texts = [c["text"] for c in q["choices"]]
        stem = q["stem"]
    else:
        labels, texts, stem = list(ex["choices"]["label"]), list(ex["choices"]["text"]), q
    key = ex.get("answerKey") or ""
    if key not in labels:
        return None
    return {
        "id": str(ex.get("id", i)),
        "context": "",
        "question": stem,
        "choices": texts,
        "label": labels.index(key),
    }


def _cosmos_row(i: int, ex: dict[str, Any]) -> dict[str, Any] | None:
    if str(ex.get("label", "")).strip() == "":
        return None
    return {
        "id": str(ex.get("id", i)),
        "context": ex["context"],
        "question": ex["question"],
        "choices": [ex[f"answer{k}"] for k in range(4)],
        "label": int(ex["label"]),
    }


def _mc_task(convert, local_files: dict[str, list[str]], columns: tuple[str, ...]):
    def hub(spec: TaskSpec, split: str, lang: str):
        ds = load_hub(spec, split)
        missing = [c for c in columns if c not in ds.column_names]
        if missing:
            raise DataError(f"task {spec.name!r}: hub data lacks column(s) {', '.join(missing)}")
        return _mc_rows(spec, split, lang, ds, convert)

    def local(spec: TaskSpec, split: str, lang: str, root: Path):
        """Every row with ``columns`` (a CSV row with the header's fields); a row ``convert`` cannot read (a
        label that is not a number, choices without texts) is one DataError naming its line."""
        path = find_file(root, local_files[split], spec)
        raw = (
            formats.read_jsonl(path, columns=columns)
            if ".jsonl" in path.name
            else formats.read_tsv(path, quoting=csv.QUOTE_MINIMAL, columns=columns, delimiter=",")
        )

        def checked(i: int, ex: formats.Row) -> dict[str, Any] | None:
            with formats.record(formats.located(path, ex)):
                return convert(i, ex)

        return _mc_rows(spec, split, lang, raw, checked)

    return make_loader(hub, local)


#: Rowan/hellaswag main still holds hellaswag.py; PR #7's 'Delete loading script' commit has the same
#: columns as Parquet (data/{train,validation,test}-00000-of-00001.parquet, config default)
HELLASWAG_PARQUET = "049e80830aedaee63cd025622acf83822eb46553"

register(
    TaskSpec(
        name="hellaswag",
        kind="multiple_choice",
        modality="text",
        category="classification",
        version="1.0",
        description="HellaSwag: commonsense sentence completion, 4 endings",
        languages=EN,
        metric="accuracy",
        source=HubSource("Rowan/hellaswag", revision=HELLASWAG_PARQUET),
        splits=("train", "validation"),
        head="multiple_choice",
        intermediate=True,
        fields={"context": "ctx_a", "question": "ctx_b", "choices": "endings", "label": "label"},
        local_format="hellaswag_{train,val}.jsonl (ctx_a ctx_b endings label)",
        sizes=Sizes({"train": 39905, "validation": 10042}, _card("hellaswag")),
        loader=_mc_task(
            _hellaswag_row,
            {"train": ["hellaswag_train.jsonl"], "validation": ["hellaswag_val.jsonl"]},
            ("ctx_a", "ctx_b", "endings", "label"),
        ),
    ),
    "hella_swag",
)

register(
    TaskSpec(
        name="commonsenseqa",
        kind="multiple_choice",
        modality="text",
        category="classification",
        version="1.0",
        description="CommonsenseQA: 5-way multiple choice over ConceptNet concepts",
        languages=EN,
        metric="accuracy",
        source=HubSource("tau/commonsense_qa", revision="94630fe30dad47192a8546eb75f094926d47e155"),
        splits=("train", "validation"),
        head="multiple_choice",
        intermediate=True,
        fields={"id": "id", "question": "question", "choices": "choices", "label": "answerKey"},
        local_format="{train,dev}_rand_split.jsonl (original release)",
        sizes=Sizes({"train": 9741, "validation": 1221}, _card("commonsense_qa")),
        loader=_mc_task(
            _csqa_row,
            {"train": ["train_rand_split.jsonl"], "validation": ["dev_rand_split.jsonl"]},
            ("id", "question", "answerKey"),
        ),
    ),
    "commonsense_qa",
    "csqa",
)

register(
    TaskSpec(
        name="cosmosqa",
        kind="multiple_choice",
        modality="text",
        category="classification",
        version="1.0",
        description="Cosmos QA: commonsense reading comprehension, 4 answers",
        languages=EN,
        metric="accuracy",
        source=HubSource(
            "allenai/cosmos_qa",
            loading_script=(
                "no Parquet copy with its columns is known: pass the Cosmos QA release files with --data-dir DIR "
                "({train,valid}.csv)"
            ),
        ),
        splits=("train", "validation"),
        head="multiple_choice",
        intermediate=True,
        fields={"id": "id", "context": "context", "question": "question", "label": "label"},
        local_format="{train,valid}.csv (id context question answer0..answer3 label)",
        sizes=Sizes({"train": 25262, "validation": 2985}, _card("cosmos_qa")),
        loader=_mc_task(
            _cosmos_row,
            {"train": ["train.csv"], "validation": ["valid.csv", "dev.csv"]},
            ("context", "question", "answer0", "answer1", "answer2", "answer3", "label"),
        ),
    ),
    "cosmos_qa",
    "cosmos",
)


# --- CCG supertagging (no public source) ---------------------------------------------------------


def _local_ccg(spec: TaskSpec, split: str, lang: str, root: Path):
    name = {"train": "train", "validation": "dev", "test": "test"}[split]
    path = find_file(root, [f"ccg/{name}.stagged", f"{name}.stagged"], spec)
    return dataset_from_rows(spec, formats.stagged_sentences(path), split=split, lang=lang)


register(
    TaskSpec(
        name="ccg",
        kind="tagging",
        modality="text",
        category="structured",
        version="1.1",
        description="CCG supertagging on CCGbank (LDC2005T13; licensed, no public copy)",
        languages=EN,
        metric="token_f1",
        source=None,
        head="tagging",
        intermediate=True,
        local_format="ccg/{train,dev,test}.stagged: one sentence a line of word|POS|SUPERTAG tokens "
        "(CCGbank sections 02-21 / 00 / 23, from LDC2005T13)",
        extra={"label_set": "from the training file (no fixed inventory)"},
        sizes=Sizes(
            {"train": 39604, "validation": 1913, "test": 2407},
            "CCGbank sentences of sections 02-21 / 00 / 23 (Hockenmaier and Steedman 2007)",
        ),
        loader=make_loader(None, _local_ccg),
    ),
    "ccgbank",
    "supertagging",
)

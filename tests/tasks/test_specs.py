"""Hub specs are consistent without the network: names, metrics, heads, fields, languages, configs."""

from __future__ import annotations

import string

import pytest

from mmxfer.tasks.common import CANONICAL, schema_of

METRICS = {
    "accuracy",
    "span_f1",
    "token_f1",
    "squad",
    "mlqa",
    "tydiqa",
    "tatoeba_accuracy",
    "bucc_f1",
    "xsim",
    "vqa_accuracy",
    "chrf_pp",
}
HEADS = {
    "classification",
    "classification_mean",
    "multiple_choice",
    "span_qa",
    "tagging",
    "vqa",
    "caption_mlm",
    "caption_contrastive",
    "bitext_contrastive",
}
EXPECTED = {
    "mnli",
    "anli",
    "qqp",
    "squad",
    "squad_v2",
    "hellaswag",
    "commonsenseqa",
    "cosmosqa",
    "ccg",
    "sst2",
    "caption",
    "caption-text",
    "vqa",
    "vqa-text",
    "xnli",
    "pawsx",
    "udpos",
    "panx",
    "xquad",
    "mlqa",
    "tydiqa",
    "bucc",
    "tatoeba",
    "flores200",
    "sib200",
    "flores_plus",
    "starter-vqa",
    "starter-vqa-text",
    "starter-caption",
    "starter-caption-text",
    "starter-bitext",
    "starter-names",
    "multi30k",
    "flores200-translate",
    "wmt14-de-en",
    "starter-sib200",
    "starter-flores",
    "starter-pivot-bitext",
}


def test_every_expected_task_is_registered(catalog):
    assert EXPECTED <= set(catalog.TASKS.names())
    for alias, name in [
        ("multinli", "mnli"),
        ("squad1", "squad"),
        ("hella_swag", "hellaswag"),
        ("vqav2", "vqa"),
        ("captioning", "caption"),
        ("pan-x", "panx"),
        ("flores", "flores200"),
    ]:
        assert catalog.TASKS.canonical(alias) == name


def test_specs_are_consistent(catalog):
    for name, spec in catalog.TASKS.items():
        assert spec.name == name
        assert spec.metric in METRICS and spec.metric in catalog.METRICS, name
        # translation: an encoder-decoder, not a head
        if spec.kind not in (
            "retrieval",
            "translation",
        ):
            assert spec.head in HEADS and spec.head in catalog.HEADS, name
        assert spec.languages and len(set(spec.languages)) == len(spec.languages), name
        assert spec.version and spec.local_format and spec.loader is not None, name
        assert spec.splits, name
        canon = set(CANONICAL[schema_of(spec)]) | {"image", "context"}
        if spec.mining:  # the hub gives aligned pairs, turned into mining rows
            canon |= set(CANONICAL["retrieval"])
        assert set(spec.fields) <= canon, (name, spec.fields)
        if spec.kind in ("classification", "tagging") and name != "ccg":
            assert spec.label_names, name
        if spec.source is not None:
            assert "/" in spec.source.path, name
            assert set(spec.source.splits) <= set(spec.splits), name
            fmt = spec.source.config or ""
            fields = {f for _, f, _, _ in string.Formatter().parse(fmt) if f}
            assert fields <= {"lang", "lang_name"}, name
        if spec.train_task is not None:
            assert spec.train_task in catalog.TASKS, name
        if spec.intermediate and not spec.control:  # a positive control may train on any language
            assert spec.languages == ("en",), name


@pytest.mark.parametrize(
    "name,count",
    [
        ("xnli", 15),
        ("pawsx", 7),
        ("udpos", 33),
        ("panx", 40),
        ("xquad", 11),
        ("mlqa", 7),
        ("tydiqa", 9),
        ("bucc", 4),
        ("tatoeba", 36),
        ("flores200", 204),
        ("sib200", 204),
        ("flores200-translate", 203),
    ],
)
def test_xtreme_and_flores_language_counts(catalog, name, count):
    assert len(catalog.task(name).languages) == count


def test_xtreme_configs_and_traps(catalog):
    xnli = catalog.task("xnli")
    assert (xnli.source.path, xnli.source.config, xnli.train_task) == (
        "google/xtreme",
        "XNLI",
        "mnli",
    )
    assert catalog.task("xquad").train_task == catalog.task("mlqa").train_task == "squad"
    tydi = catalog.task("tydiqa")
    assert tydi.source.config == "tydiqa" and set(tydi.extra["id_prefix"]) == set(tydi.languages)
    assert tydi.extra["train_languages"] == ("en",)
    assert "distractor" in catalog.task("bucc").hub_caveat
    ud = catalog.task("udpos")
    assert set(ud.extra["hub_lang"]) == set(ud.languages) and len(ud.label_names) == 17
    assert catalog.task("flores_plus").source.gated
    assert catalog.task("flores_plus").extra["code_renames"]["zho_Hans"] == "cmn_Hans"


def test_intermediate_vqa_resolves_to_a_concrete_dataset(catalog):
    vqa = catalog.task("vqa")
    assert vqa.source.path == "HuggingFaceM4/VQAv2" and vqa.extra["dataset"] == "vqav2"
    assert vqa.answer_vocab_size == 3129
    twin = catalog.task("vqa-text")
    assert twin.modality == "text" and twin.twin_of == "vqa" and twin.metric == vqa.metric
    assert catalog.task("caption").source.path == "yerevann/coco-karpathy"
    assert catalog.task("caption-text").twin_of == "caption"


def _ls_tasks(capsys) -> dict[str, str]:
    from mmxfer.cli import main

    assert main(["ls", "tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines[0].index("source")
    return {line.split()[0]: line[start:] for line in lines[2:]}


def test_ls_tasks_lists_everything(catalog, capsys):
    sources = _ls_tasks(capsys)
    assert set(EXPECTED) <= set(sources)
    assert sources["xnli"] == "google/xtreme (XNLI)"


def test_ls_tasks_says_where_each_task_reads_its_data(catalog, capsys):
    from mmxfer.tasks.common import is_generated

    sources = _ls_tasks(capsys)
    local_only = {
        "ccg",
        "flickr30k",
        "multi30k",
    }  # no hub source, nothing shipped or generated: --data-dir
    for name in local_only:
        spec = catalog.task(name)
        assert sources[name] == f"local only (--data-dir): {spec.local_format}", name
    assert sources["ccg"].startswith("local only (--data-dir): ccg/{train,dev,test}.stagged")
    assert sources["flickr30k"].startswith("local only (--data-dir): dataset_flickr30k.json")
    assert sources["starter-sib200"] == "shipped: mmxfer/resources/sib200"
    assert sources["bucc"] == "google/xtreme (bucc18.{lang}) [hub: upper bound, no distractors]"
    generated = {name for name, text in sources.items() if text == "generated"}
    assert generated == {name for name, spec in catalog.TASKS.items() if is_generated(spec)}
    assert generated and not generated & local_only


def test_arm_modality_comes_from_the_task_specs(catalog):
    assert catalog.modality_of([]) == "none"
    assert catalog.modality_of(["starter-vqa-text", "mnli"]) == "text"
    assert catalog.modality_of(["starter-vqa", "caption"]) == "image-text"
    assert catalog.modality_of(["starter-vqa", "starter-vqa-text"]) == "mixed"
    assert catalog.modality_of(["mnli", "a-task-no-longer-registered"]) == "unknown"
    assert (
        catalog.find_task("a-task-no-longer-registered") is None
        and catalog.find_task("multinli").name == "mnli"
    )


def test_flores_tracks_are_three_tasks_with_their_own_metrics(catalog):
    from mmxfer.evaluation.scoring import task_metrics

    xsim, sib, mt = (
        catalog.task("flores200"),
        catalog.task("sib200"),
        catalog.task("flores200-translate"),
    )
    assert (xsim.kind, sib.kind, mt.kind) == ("retrieval", "classification", "translation")
    assert task_metrics(mt) == ("chrf_pp", "spbleu") and task_metrics(xsim) == ("xsim",)
    assert "eng_Latn" not in mt.languages and mt.train_task == "wmt14-de-en"
    assert set(mt.languages) == set(xsim.languages) - {"eng_Latn"}
    pair = catalog.task("wmt14-de-en")
    assert (pair.source.path, pair.source.config, pair.kind) == (
        "wmt/wmt14",
        "de-en",
        "translation",
    )
    # the full hash is pinned on a connected machine
    assert pair.extra["hub_commit_seen"] == "b199e40"
    assert (sib.source.path, sib.source.revision) == ("Davlan/sib200", "refs/convert/parquet")


def test_has_image_is_whether_the_examples_carry_an_image(catalog):
    image = {"caption", "vqa", "gqa", "textvqa", "flickr30k", "starter-vqa", "starter-caption"}
    assert {name for name, spec in catalog.TASKS.items() if spec.has_image} == image
    for text in (
        "caption-text",
        "vqa-text",
        "starter-vqa-text",
        "starter-caption-text",
        "mnli",
        "xnli",
    ):
        assert catalog.task(text).has_image is False
    # an image-text task's examples hold an image column; its text twin's do not
    assert "image" in catalog.task("starter-vqa").load("validation")[:0].keys()
    assert "image" not in catalog.task("starter-vqa-text").load("validation")[:0].keys()


def test_the_properties_extra_holds_are_typed_with_their_defaults(catalog):
    from mmxfer.tasks.base import TaskSpec

    plain = TaskSpec(
        name="p",
        kind="classification",
        modality="text",
        category="classification",
        version="1",
        description="",
        languages=("en",),
        metric="accuracy",
        extra={"a_plugin_key": [1, 2]},
    )
    assert plain.extra["a_plugin_key"] == [1, 2]  # keys of its own stay with the spec
    defaults = {
        "twin_of": None,
        "control": False,
        "synthetic": False,
        "mining": False,
        "hub_caveat": None,
        "metrics": ("accuracy",),
        "open_languages": False,
        "text_prefix": "",
        "shipped": None,
        "english_pool": (),
        "paired": (),
        "rounds": (),
        "data_seed": 0,
        "allow_null": False,
        "closed_vocabulary": False,
        "answer_vocab_size": None,
    }
    assert {key: getattr(plain, key) for key in defaults} == defaults
    declared = {
        ("vqa-text", "twin_of"): "vqa",
        ("starter-caption-text", "twin_of"): "starter-caption",
        ("starter-pivot-bitext", "control"): True,
        ("starter-vqa", "synthetic"): True,
        ("bucc", "mining"): True,
        ("flores200-translate", "metrics"): ("chrf_pp", "spbleu"),
        ("tatoeba", "open_languages"): True,
        ("starter-pivot-bitext", "text_prefix"): "query: ",
        ("starter-sib200", "shipped"): "mmxfer/resources/sib200",
        ("starter-flores", "english_pool"): ("train", "validation", "test"),
        ("anli", "rounds"): (1, 2, 3),
        ("squad_v2", "allow_null"): True,
        ("starter-caption", "closed_vocabulary"): True,
        ("vqa", "answer_vocab_size"): 3129,
        ("gqa", "answer_vocab_size"): 1842,
        ("starter-names", "data_seed"): 0,
    }
    for (name, key), value in declared.items():
        got = getattr(catalog.task(name), key)
        assert got == value and type(got) is type(value), (name, key, got)
    paired = catalog.task("starter-pivot-bitext").paired
    assert (
        type(paired) is tuple
        and len(paired) == 31
        and "eng_Latn" not in paired
        and "deu_Latn" not in paired
    )
    assert (
        "distractor" in catalog.task("bucc").hub_caveat and catalog.task("mnli").hub_caveat is None
    )
    # the typed reading, not the raw value: a plugin's list of metrics or rounds comes back as a tuple
    listed = TaskSpec(
        name="q",
        kind="classification",
        modality="text",
        category="classification",
        version="1",
        description="",
        languages=("en",),
        metric="accuracy",
        extra={
            "metrics": ["accuracy", "f1"],
            "rounds": ["1", 2],
            "seed": 7,
            "answer_vocab_size": "10",
        },
    )
    assert (listed.metrics, listed.rounds, listed.data_seed, listed.answer_vocab_size) == (
        ("accuracy", "f1"),
        (1, 2),
        7,
        10,
    )

"""UD CoNLL-U read as XTREME reads it for UDPOS: multi-word tokens keep their surface form with the span head's
UPOS, sentences of (all but one) '_' words are dropped, ZWNJ and spaces inside words are removed."""

from __future__ import annotations

from mmxfer import catalog
from mmxfer.tasks import formats


def _line(i, form, upos, head, deps="_"):
    return f"{i}\t{form}\t{form.lower()}\t{upos}\t_\t_\t{head}\t_\t{deps}\t_"


def _mwt(span, form):
    return f"{span}\t{form}\t_\t_\t_\t_\t_\t_\t_\t_"


SENTENCES = [
    [
        "# sent_id = mwt-tie",
        _line(1, "Il", "DET", 2),
        _line(2, "libro", "NOUN", 0),
        _mwt("3-4", "della"),
        _line(3, "di", "ADP", 5),
        _line(4, "la", "DET", 5),
        _line(5, "ragazza", "NOUN", 2),
    ],
    [
        "# sent_id = mwt-highest",
        _mwt("1-2", "vámonos"),
        _line(1, "vamos", "VERB", 0),
        _line(2, "nos", "PRON", 1),
        _line(3, "ya", "ADV", 1),
        "3.1\tfoo\t_\t_\t_\t_\t_\t_\t1:x\t_",
    ],
    [
        "# sent_id = withheld",
        _line(1, "_", "NOUN", 0),
        _line(2, "_", "VERB", 1),
        _line(3, "_", "PUNCT", 1),
    ],
    [
        "# sent_id = all-but-one",
        _line(1, "_", "NOUN", 0),
        _line(2, "_", "VERB", 1),
        _line(3, "ok", "PUNCT", 1),
    ],
    ["# sent_id = one-of-two", _line(1, "_", "NOUN", 0), _line(2, "ok", "PUNCT", 1)],
    [
        "# sent_id = kept",
        _line(1, "_", "NOUN", 0),
        _line(2, "a", "VERB", 1),
        _line(3, "b", "NOUN", 2),
        _line(4, "c", "PUNCT", 1),
    ],
    ["# sent_id = clean", _line(1, "می\u200cخواهم", "VERB", 0), _line(2, "Hà Nội", "PROPN", 1)],
    [
        "# sent_id = lang-tie",
        _line(1, "w", "VERB", 0),
        _mwt("2-3", "ab"),
        _line(2, "a", "NOUN", 1),
        _line(3, "b", "PRON", 1),
    ],
]


def _write(path):
    path.write_text("\n\n".join("\n".join(s) for s in SENTENCES) + "\n\n", encoding="utf-8")
    return path


def test_multi_word_tokens_underscore_sentences_and_cleaning(tmp_path):
    rows = {
        r["id"]: r
        for r in formats.conllu_sentences(_write(tmp_path / "it_x-ud-test.conllu"), lang="it")
    }
    assert set(rows) == {"mwt-tie", "mwt-highest", "kept", "clean", "lang-tie"}
    # tie between di (ADP) and la (DET) at the same depth: Italian precedence ranks ADP first
    assert (rows["mwt-tie"]["tokens"], rows["mwt-tie"]["tags"]) == (
        ["Il", "libro", "della", "ragazza"],
        ["DET", "NOUN", "ADP", "NOUN"],
    )
    # a single highest word heads the span; the empty node 3.1 is no word
    assert (rows["mwt-highest"]["tokens"], rows["mwt-highest"]["tags"]) == (
        ["vámonos", "ya"],
        ["VERB", "ADV"],
    )
    assert rows["kept"]["tokens"] == ["_", "a", "b", "c"]
    assert rows["clean"]["tokens"] == ["میخواهم", "HàNội"]
    assert rows["lang-tie"]["tags"] == ["VERB", "PRON"]  # it: PRON before NOUN


def test_precedence_depends_on_the_language(tmp_path):
    path = _write(tmp_path / "de_x-ud-test.conllu")
    default = {r["id"]: r for r in formats.conllu_sentences(path)}
    french = {r["id"]: r for r in formats.conllu_sentences(path, lang="fr")}
    assert default["lang-tie"]["tags"] == ["VERB", "NOUN"] and french["lang-tie"]["tags"] == [
        "VERB",
        "PRON",
    ]


def test_udpos_local_loader_uses_the_xtreme_reading(tmp_path):
    catalog.load_plugins()
    _write(tmp_path / "it_x-ud-test.conllu")
    ds = catalog.task("udpos").load("test", "it", str(tmp_path))
    assert len(ds) == 5 and ["Il", "libro", "della", "ragazza"] in ds["tokens"]

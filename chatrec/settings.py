"""Every setting in one dataclass, filled from defaults ← CHATREC_* environment variables ← command-line flags.

No other module reads os.environ: they receive a Settings (or the small config derived from it).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping, Sequence

LLM_BACKENDS = ("none", "openai", "transformers")
RERANK_MODES = ("llm", "score", "lm")
DATASET_NAMES = ("ml-latest-small", "ml-1m", "ml-100k")


@dataclass(frozen=True)
class Settings:
    # data
    dataset: str = "ml-latest-small"
    data_dir: Path | None = None
    cache_dir: Path = Path.home() / ".cache" / "chatrec"
    allow_download: bool = True
    books: bool = True  # load goodbooks-10k as the second domain
    # Tuned with chatrec/eval/tune.py on the Chat-REC protocol (ML-100K P@5 .387); ml-latest-small P@5 .327 vs .272
    # with the earlier 64 factors / reg 10 / alpha 2 / all ratings.
    als_factors: int = 200
    als_regularization: float = 30.0
    als_alpha: float = 0.5
    als_iterations: int = 15
    als_confidence: str = "linear"
    als_min_rating: float = 3.0  # ratings below this are not evidence of liking
    n_candidates: int = 30
    n_recs: int = 5
    # LLM
    llm_backend: str = "none"
    llm_base_url: str | None = None
    llm_api_key: str = field(default="", repr=False)  # never printed
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = 60.0
    llm_max_retries: int = 2
    llm_max_tokens: int = 512
    llm_temperature: float = 0.2
    local_model: str | None = None  # transformers path or model id (llm_backend="transformers")
    local_model_file: str | None = None  # GGUF file name inside local_model, if any
    rerank: str = "llm"  # llm | score | lm (LMRecSys title scorer)
    scorer_model: str | None = None
    scorer_model_file: str | None = None
    # knowledge store
    embedder: str = "use-multilingual"
    chroma_host: str | None = None
    chroma_port: int | None = None
    # web app
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    concurrency: int = 4
    log_level: str = "INFO"

    def __post_init__(self):
        if self.llm_backend not in LLM_BACKENDS:
            raise ValueError(f"llm_backend must be one of {LLM_BACKENDS}, got {self.llm_backend!r}")
        if self.rerank not in RERANK_MODES:
            raise ValueError(f"rerank must be one of {RERANK_MODES}, got {self.rerank!r}")
        if self.n_recs <= 0 or self.n_candidates < self.n_recs:
            raise ValueError("need 0 < n_recs <= n_candidates")

    @property
    def llm_enabled(self) -> bool:
        return self.llm_backend != "none"

    def replace(self, **kw) -> "Settings":
        return dataclasses.replace(self, **kw)

    def redacted(self) -> dict:
        """A loggable view: the API key is never shown."""
        d = dataclasses.asdict(self)
        d["llm_api_key"] = "***" if self.llm_api_key else ""
        return d


def _convert(f: dataclasses.Field, raw: str):
    t = str(f.type)
    if "bool" in t:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if "Path" in t:
        return Path(raw).expanduser() if raw else None
    if t.startswith("int"):
        return int(raw)
    if "int |" in t:
        return int(raw) if raw else None
    if "float" in t:
        return float(raw)
    return raw or (None if "None" in t else raw)


# Standard variables users already have set for their tools.
_ALIASES = {"llm_api_key": ("OPENAI_API_KEY",), "chroma_host": ("CHROMA_HOST",), "chroma_port": ("CHROMA_PORT",),
            "llm_base_url": ("OPENAI_BASE_URL",)}


def from_env(env: Mapping[str, str] | None = None, base: Settings | None = None) -> Settings:
    env = os.environ if env is None else env
    kw = {}
    for f in fields(Settings):
        for name in (f"CHATREC_{f.name.upper()}", *_ALIASES.get(f.name, ())):
            if name in env:
                kw[f.name] = _convert(f, env[name])
                break
    s = base or Settings()
    # A base URL without an explicit backend means "use that OpenAI-compatible server". A stray OPENAI_API_KEY
    # in the shell alone does not switch the backend on (it would spend the user's money unasked).
    if "llm_backend" not in kw and "llm_base_url" in kw:
        kw["llm_backend"] = "openai"
    return dataclasses.replace(s, **kw)


def build_parser(prog: str = "app.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Chat-REC conversational recommender")
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        t = str(f.type)
        if "bool" in t:
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper())
    return p


def from_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
              parser: argparse.ArgumentParser | None = None) -> tuple[Settings, argparse.Namespace]:
    """Defaults ← environment ← flags. Returns the settings and the parsed namespace (for extra flags)."""
    parser = parser or build_parser()
    ns = parser.parse_args(argv)
    s = from_env(env)
    kw = {}
    by_name = {f.name: f for f in fields(Settings)}
    for name, f in by_name.items():
        v = getattr(ns, name, None)
        if v is None:
            continue
        kw[name] = v if isinstance(v, bool) else _convert(f, v)
    if "llm_backend" not in kw and ("llm_base_url" in kw) and s.llm_backend == "none":
        kw["llm_backend"] = "openai"
    return dataclasses.replace(s, **kw), ns

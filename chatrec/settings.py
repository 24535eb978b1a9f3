"""Every setting in one validated model, filled from defaults ← CHATREC_* environment variables ← command-line flags.

No other module reads os.environ: they receive a Settings (or the small config derived from it).

Secrets are held as pydantic `SecretStr` (printing a Settings shows `**********`), and every URL is treated as
secret-bearing: `safe_url` drops user:password and the query string (`?api-key=`), and `redact_urls` does the
same for every URL inside a text, so a status line or log line can be shown to anyone.

To add a setting: add a field (with a comment when the name does not say enough). It becomes the flag
`--the-name` and the variable `CHATREC_THE_NAME`; pydantic converts and checks the value.
"""
from __future__ import annotations

import argparse
import os
import typing
from pathlib import Path
from typing import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from retrieval import rx

LLM_BACKENDS = ("none", "openai", "transformers")
RERANK_MODES = ("llm", "score", "lm", "cllm")
DATASET_NAMES = ("ml-latest-small", "ml-1m", "ml-100k", "ml-25m", "ml-32m")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class Settings(BaseModel):
    # Errors never repeat the input: it may hold the API key or a URL with credentials.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, hide_input_in_errors=True)

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
    # ALS also learns from the other MovieLens sets on hand (retrieval/pooled.py, weights per catalog there):
    # `chatrec-eval pooled` on ml-latest-small users, NDCG@10 .343 → .370 (paired +.026 ± .004), R@10 .235 → .260.
    pool_movielens: bool = True
    n_candidates: int = 30
    n_recs: int = 5
    # The fusion ranker's model file (`chatrec-eval ranker` builds it): "default" is the one shipped in
    # chatrec/data/ranker.json, "none" the plain weighted sum of the candidate sources.
    ranker_model: str = "default"
    # LLM
    llm_backend: str = "none"
    # May carry credentials (http://user:pass@host/v1?api-key=...): shown only through safe_url.
    llm_base_url: str | None = Field(default=None, repr=False)
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = 60.0
    llm_max_retries: int = 2
    llm_max_tokens: int = 512
    llm_temperature: float = 0.2
    # All LLM calls of one turn together (understanding when the rules are unsure, ranking, intro): past it the
    # turn finishes with what it has (score order, template text) and says so. A few seconds suit a local CPU server.
    llm_turn_budget_s: float = 6.0
    local_model: str | None = None  # transformers path or model id (llm_backend="transformers")
    local_model_file: str | None = None  # GGUF file name inside local_model, if any
    rerank: str = "llm"  # llm | score | lm (LMRecSys title scorer) | cllm (CLLM4Rec)
    scorer_model: str | None = None
    scorer_model_file: str | None = None
    # A CLLM4Rec model folder (`chatrec-eval cllm4rec --save DIR`, trained on this dataset) for rerank=cllm.
    cllm_model: Path | None = None
    # knowledge store
    embedder: str = "use-multilingual"
    chroma_host: str | None = None
    chroma_port: int | None = None
    # web app
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    # Events the web app runs at once. The engine takes milliseconds without an LLM; waiting on an LLM server is
    # I/O, so more slots than cores pay off (a session's own events still run one at a time).
    concurrency: int = 16
    # Anonymous sessions held by the server: dropped after this long idle, and at most this many (least recently
    # used first). The browser keeps its own copy of the conversation, so an expired session is restored on reload.
    session_idle_s: float = 1800.0
    max_sessions: int = 500
    # "user:password" turns on Gradio's login page (a shared deployment: the session hash alone is not a secret).
    auth: SecretStr | None = None
    # Host names the app answers to when bound beyond loopback (comma-separated), besides this machine's names.
    allowed_hosts: str = ""
    log_level: str = "INFO"
    # Catalog enrichment (`chatrec-index enrich`): with a TMDB key, Korean titles, posters, runtimes and more;
    # without one, Korean titles from Wikidata. The app itself only reads what was cached.
    tmdb_api_key: SecretStr = SecretStr("")

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.llm_backend not in LLM_BACKENDS:
            raise ValueError(f"llm_backend must be one of {LLM_BACKENDS}, got {self.llm_backend!r}")
        if self.rerank not in RERANK_MODES:
            raise ValueError(f"rerank must be one of {RERANK_MODES}, got {self.rerank!r}")
        if self.n_recs <= 0 or self.n_candidates < self.n_recs:
            raise ValueError("need 0 < n_recs <= n_candidates")
        if self.llm_turn_budget_s <= 0:
            raise ValueError(f"llm_turn_budget_s must be positive, got {self.llm_turn_budget_s}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.session_idle_s <= 0 or self.max_sessions < 1:
            raise ValueError("session_idle_s must be positive and max_sessions at least 1")
        if self.auth is not None and ":" not in self.auth.get_secret_value():
            raise ValueError("auth must be 'user:password'")
        return self

    @property
    def llm_enabled(self) -> bool:
        return self.llm_backend != "none"

    def replace(self, **kw) -> "Settings":
        """A validated copy with some values changed."""
        return type(self).model_validate({**self._values(), **kw})

    def redacted(self) -> dict:
        """A loggable view: secrets are never shown, URLs lose their credentials and query."""
        d = self._values()
        d["llm_api_key"] = "***" if self.llm_api_key.get_secret_value() else ""
        d["tmdb_api_key"] = "***" if self.tmdb_api_key.get_secret_value() else ""
        d["auth"] = "***" if self.auth is not None else None
        d["llm_base_url"] = safe_url(self.llm_base_url)
        return d

    def login(self) -> tuple[str, str] | None:
        """(user, password) for Gradio's auth, or None when the app is open."""
        if self.auth is None:
            return None
        user, _, password = self.auth.get_secret_value().partition(":")
        return user, password

    def _values(self) -> dict:
        return {name: getattr(self, name) for name in type(self).model_fields}


# ------------------------------------------------------------------------------------------------ URLs
# A URL with everything up to the host, user:password included whatever its characters ("pa'ss@", "p@ss@"), then
# the rest up to a space or a quote.
_URL = rx.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^\s/]*@)?[^\s<>\"'`]+", rx.IGNORECASE)


def safe_url(url: str | None) -> str | None:
    """`url` without user:password, query and fragment: "http://u:p@h:8080/v1?key=k" → "http://h:8080/v1"."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # unparseable (bad port, brackets): show nothing of it rather than risk a secret
        return "<url>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_urls(text: str) -> str:
    """Every URL inside `text` passed through safe_url (for status lines and log messages)."""
    return _URL.sub(lambda m: safe_url(m.group(0)) or "", text)


# ------------------------------------------------------------------------------------------------ env and flags
# Standard variables users already have set for their tools.
_ALIASES = {"llm_api_key": ("OPENAI_API_KEY",), "tmdb_api_key": ("TMDB_API_KEY",), "chroma_host": ("CHROMA_HOST",), "chroma_port": ("CHROMA_PORT",),
            "llm_base_url": ("OPENAI_BASE_URL",)}


def _is_bool(name: str) -> bool:
    return Settings.model_fields[name].annotation is bool


def _optional(name: str) -> bool:
    return type(None) in typing.get_args(Settings.model_fields[name].annotation)


def _raw(name: str, raw: str):
    """A flag or variable's text as pydantic's input: an empty value unsets an optional setting."""
    return None if raw == "" and _optional(name) else raw


def _validated(kw: dict, base: Settings | None) -> Settings:
    # A base URL without an explicit backend means "use that OpenAI-compatible server". A stray OPENAI_API_KEY
    # in the shell alone does not switch the backend on (it would spend the user's money unasked).
    base = base or Settings()
    if "llm_backend" not in kw and kw.get("llm_base_url") and base.llm_backend == "none":
        kw["llm_backend"] = "openai"
    return base.replace(**kw)


def from_env(env: Mapping[str, str] | None = None, base: Settings | None = None) -> Settings:
    env = os.environ if env is None else env
    kw = {}
    for name in Settings.model_fields:
        for var in (f"CHATREC_{name.upper()}", *_ALIASES.get(name, ())):
            if var in env:
                kw[name] = _raw(name, env[var])
                break
    return _validated(kw, base)


def build_parser(prog: str = "app.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Chat-REC conversational recommender")
    for name in Settings.model_fields:
        flag = "--" + name.replace("_", "-")
        if _is_bool(name):
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(flag, dest=name, default=None, metavar=name.upper())
    return p


def from_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
              parser: argparse.ArgumentParser | None = None) -> tuple[Settings, argparse.Namespace]:
    """Defaults ← environment ← flags. Returns the settings and the parsed namespace (for extra flags).

    A value pydantic rejects ends the program with argparse's usage error (exit 2), naming the setting."""
    parser = parser or build_parser()
    ns = parser.parse_args(argv)
    try:
        s = from_env(env)
        kw = {}
        for name in Settings.model_fields:
            v = getattr(ns, name, None)
            if v is not None:
                kw[name] = v if isinstance(v, bool) else _raw(name, v)
        return _validated(kw, s), ns
    except ValidationError as e:
        parser.error(_explain(e))
        raise  # parser.error exits; this line only tells type checkers so


def _explain(e: ValidationError) -> str:
    """One line per bad setting, without echoing the value (it may be a secret)."""
    lines = []
    for err in e.errors(include_input=False, include_url=False):
        where = ".".join(str(x) for x in err["loc"]) or "settings"
        lines.append(f"{where}: {err['msg']}")
    return "invalid settings: " + "; ".join(lines)

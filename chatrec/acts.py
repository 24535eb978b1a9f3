"""Dialogue acts learned from labelled real lines: what a user line asks the assistant to do.

The model is a linear softmax head over three feature groups, trained by `chatrec-eval understanding` on the
labelled lines in annotations/acts (ReDial seeker lines in English and as Korean users write them, the behaviour
suite's lines, and app-style lines written for this project):
- the multilingual sentence embedding of the line (USE v3, the encoder the knowledge store already loads), which
  carries meaning across languages and paraphrases;
- hashed character 2-5-grams and word 1-3-grams of the lower-cased line, which carry the short and misspelled
  forms an encoder blurs ("ㅋㅋ", "thx", "haven't", "봤어", "any others");
- the dialogue context an app knows: is this the user's first line, are cards on screen, did the assistant just
  ask a question.

A message of several lines is read line by line and its act is the most demanding one that a line says with
confidence (the labelling guide's order: request > question > feedback > answer > chitchat > greeting >
off_topic): "Hi / I need a movie for my kid" is a request. A single line is read whole, as it was labelled.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

ACTS = ("request", "feedback", "question", "answer", "chitchat", "greeting", "off_topic")
SUBS = {
    "request": ("new", "refine", "more"),
    "feedback": ("like", "dislike", "seen", "unseen", "interested", "correction"),
    "question": ("plot", "people", "year", "runtime", "age", "content", "compare", "opinion", "other"),
    "answer": ("yes", "no", "choice", "other"),
    "chitchat": ("thanks", "ack", "bye", "smalltalk"),
    "greeting": ("hello",),
    "off_topic": ("other",),
}
SUB_LABELS = tuple(f"{a}/{s}" for a in ACTS for s in SUBS[a])
MODEL_PATH = Path(__file__).parent / "data" / "acts.npz"
ENCODER_ID = "use-multilingual-v3"  # the model reads the embeddings it was trained on, whatever the store uses
N_HASH = 2 ** 13
MAX_CHARS = 300  # a line longer than this says its act in its first 300 characters
SURE = 0.5  # a line's act counts for the message from this probability
MAX_LINES = 12


@dataclass(frozen=True)
class ActContext:
    first_turn: bool = True  # nothing said yet in this conversation
    cards_on_screen: bool = False
    asked: bool = False  # the assistant's last turn asked the user something

    def vector(self) -> np.ndarray:
        return np.array([self.first_turn, self.cards_on_screen, self.asked], dtype=np.float32)


@dataclass(frozen=True)
class ActPrediction:
    act: str
    sub: str
    confidence: float  # probability of `act` in the line that decided it
    probs: dict[str, float]  # per act, the highest probability any line gave it

    def p(self, act: str) -> float:
        return self.probs.get(act, 0.0)


@functools.lru_cache(maxsize=1)
def _hashers():
    from sklearn.feature_extraction.text import HashingVectorizer

    # alternate_sign off and l2-normalised counts: a stable, version-independent hashing (murmurhash3).
    chars = HashingVectorizer(analyzer="char", ngram_range=(2, 5), n_features=N_HASH, alternate_sign=False,
                              lowercase=True, norm="l2")
    words = HashingVectorizer(analyzer="word", ngram_range=(1, 3), n_features=N_HASH, alternate_sign=False,
                              lowercase=True, norm="l2", token_pattern=r"(?u)\b\w+\b|[?!]")
    return chars, words


def featurize(texts: Sequence[str], contexts: Sequence[ActContext], encoder) -> tuple[np.ndarray, object]:
    """(dense [embedding | context], sparse hashed n-grams) for a batch of lines."""
    from scipy.sparse import hstack

    texts = [t[:MAX_CHARS] for t in texts]
    emb = encoder.encode(list(texts)) if texts else np.zeros((0, 512), dtype=np.float32)
    ctx = np.stack([c.vector() for c in contexts]) if contexts else np.zeros((0, 3), dtype=np.float32)
    chars, words = _hashers()
    return np.hstack([emb, ctx]).astype(np.float32), hstack([chars.transform(texts), words.transform(texts)]).tocsr()


def message_lines(text: str) -> list[str]:
    """The lines of a message that say something, at most MAX_LINES (the first ones and the last one)."""
    parts = [p.strip() for p in text.splitlines() if any(ch.isalnum() for ch in p)] or [text.strip()]
    return parts if len(parts) <= MAX_LINES else parts[:MAX_LINES - 1] + parts[-1:]


class ActModel:
    """The trained head (chatrec/data/acts.npz): act and sub-act probabilities for a line in its context."""

    def __init__(self, weights: dict[str, np.ndarray], meta: dict, encoder=None):
        self.w_act = weights["act_dense"], weights["act_sparse"], weights["act_bias"]
        self.w_sub = weights["sub_dense"], weights["sub_sparse"], weights["sub_bias"]
        self.meta = meta
        self._encoder = encoder

    @classmethod
    def load(cls, path: Path = MODEL_PATH, encoder=None) -> "ActModel":
        with np.load(path, allow_pickle=False) as z:
            weights = {k: z[k].astype(np.float32) for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"]))
        if tuple(meta.get("acts", ())) != ACTS or tuple(meta.get("subs", ())) != SUB_LABELS:
            raise ValueError(f"{path} was trained for other labels; retrain with `chatrec-eval understanding --ship`")
        return cls(weights, meta, encoder)

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = _default_encoder()
        return self._encoder

    def save(self, path: Path) -> None:
        arrays = {"act_dense": self.w_act[0], "act_sparse": self.w_act[1], "act_bias": self.w_act[2],
                  "sub_dense": self.w_sub[0], "sub_sparse": self.w_sub[1], "sub_bias": self.w_sub[2]}
        np.savez_compressed(path, meta=np.array(json.dumps(self.meta)),
                            **{k: v.astype(np.float16) for k, v in arrays.items()})

    def _probs(self, dense: np.ndarray, sparse, w) -> np.ndarray:
        wd, ws, b = w
        logits = dense @ wd.T + sparse @ ws.T + b
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def probabilities(self, texts: Sequence[str], contexts: Sequence[ActContext]) -> tuple[np.ndarray, np.ndarray]:
        """(act probabilities, sub-act probabilities) per line, rows in ACTS / SUB_LABELS order."""
        dense, sparse = featurize(texts, contexts, self.encoder)
        return self._probs(dense, sparse, self.w_act), self._probs(dense, sparse, self.w_sub)

    def predict(self, text: str, context: ActContext = ActContext()) -> ActPrediction:
        parts = message_lines(text)
        pa, ps = self.probabilities(parts, [context] * len(parts))
        best = pa.max(axis=0)
        probs = {a: float(best[i]) for i, a in enumerate(ACTS)}
        # The most demanding act a line says with confidence; else the single most likely act.
        act = next((a for a in ACTS if probs[a] >= SURE), None)
        if act is None:
            i, j = np.unravel_index(int(pa.argmax()), pa.shape)
            act = ACTS[j]
        row = int(pa[:, ACTS.index(act)].argmax())
        subs = [SUB_LABELS.index(f"{act}/{s}") for s in SUBS[act]]
        sub = SUBS[act][int(np.argmax(ps[row, subs]))]
        return ActPrediction(act, sub, float(pa[row, ACTS.index(act)]), probs)


@functools.lru_cache(maxsize=1)
def _default_encoder():
    from retrieval.embeddings import USEMultilingualEmbedding

    return USEMultilingualEmbedding()


def load(encoder=None) -> ActModel:
    """The shipped model (chatrec/data/acts.npz), reading with `encoder` when it is the encoder it was trained on.
    A missing or stale file is a broken install: ActModelError says how to rebuild it."""
    if getattr(encoder, "encoder_id", None) != ENCODER_ID:
        encoder = None  # another encoder (the store may use sentence-transformers): load the one trained on
    try:
        return _shipped(encoder)
    except (OSError, ValueError, KeyError) as e:
        raise ActModelError(f"the dialogue-act model {MODEL_PATH} could not be loaded ({e}); reinstall, or rebuild "
                            "it with `chatrec-eval understanding --ship`") from None


class ActModelError(RuntimeError):
    """The shipped dialogue-act model is missing or does not match this version's labels."""


@functools.lru_cache(maxsize=2)
def _shipped(encoder) -> ActModel:
    return ActModel.load(MODEL_PATH, encoder)

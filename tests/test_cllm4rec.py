"""CLLM4Rec: soft-token vocabulary, the three objectives on a learnable synthetic catalog, the catalog-wide head,
save/load, candidate reranking; one run on the real SmolLM2 backbone from the packaged GGUF.

The fast tests use a tiny randomly initialised Llama (the SmolLM2 architecture) with a real word-level
transformers tokenizer built from the synthetic documents, so they run in seconds.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from retrieval.cllm4rec import (
    CLLMConfig, CLLMLoadError, CLLMRecommender, Prompter, SoftVocab, build_training_data, prepare_backbone,
    train_cllm,
)
from retrieval.cllm4rec.corpus import IGNORE, item_document, pad
from retrieval.types import Catalog, Item, Ratings
from tests.test_lm_loading import GGUF_DIR, SMOL, requires_smol

GROUPS = ("Western", "Horror", "Musical", "Romance")
PER_GROUP = 8


def synthetic(n_users: int = 64, liked: int = 6, seed: int = 0):
    """Four taste groups: a user likes `liked` of the 8 items of one genre. One liked item per user is held out.

    Returns (catalog, training ratings, held-out item row per user, group per user)."""
    rng = np.random.default_rng(seed)
    items = [Item(id=f"syn:{g * PER_GROUP + j}", title=f"{name} story {j}", year=1990 + j, genres=(name,))
             for g, name in enumerate(GROUPS) for j in range(PER_GROUP)]
    catalog = Catalog(items, "synthetic")
    users, rows, held, group = [], [], [], []
    for u in range(n_users):
        g = u % len(GROUPS)
        pick = g * PER_GROUP + rng.choice(PER_GROUP, size=liked, replace=False)
        users += [u] * (liked - 1)
        rows += pick[:-1].tolist()
        held.append(int(pick[-1]))
        group.append(g)
    n = len(users)
    ratings = Ratings(np.array(users), np.array(rows), np.full(n, 5.0, np.float32), np.arange(n, dtype=np.int64),
                      tuple(f"u{u}" for u in range(n_users)))
    return catalog, ratings, np.array(held), np.array(group)


def word_tokenizer(texts):
    """A real (tiny) transformers tokenizer: word level over the words the tests use."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"[UNK]": 0}
    pre = pre_tokenizers.Whitespace()
    for t in texts:
        for w, _ in pre.pre_tokenize_str(t):
            words.setdefault(w, len(words))
    tok = Tokenizer(models.WordLevel(words, unk_token="[UNK]"))
    tok.pre_tokenizer = pre
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[UNK]")


SNIPPETS = (" has interacted with", ",", " will interact with", " is a movie:", " enjoys", "titles such as",
            "nothing yet.")


def tiny_backbone(vocab_size: int, layers: int = 2, seed: int = 0):
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=vocab_size, hidden_size=48, intermediate_size=96,
                                   num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=512, tie_word_embeddings=True)
    return transformers.LlamaForCausalLM(cfg)


FAST = CLLMConfig(layers=None, pretrain_epochs=1, finetune_epochs=25, batch_size=16, lr=2e-2, content_tokens=16,
                  max_items=16, autocast=False, anon_rate=0.2)


@pytest.fixture(scope="module")
def trained():
    catalog, ratings, held, group = synthetic()
    tok = word_tokenizer([item_document(it) for it in catalog] + list(SNIPPETS))
    data = build_training_data(ratings, catalog, len(tok))
    model, tlog = train_cllm(tiny_backbone(len(tok)), tok, data, FAST, progress=False)
    return CLLMRecommender.from_training(model, tok, FAST), data, held, group, tlog, catalog


# --- vocabulary ------------------------------------------------------------------------------------------------

def test_vocabulary_has_one_token_per_user_and_item():
    v = SoftVocab(100, ("a", "b"), ("x:1", "x:2", "x:3"))
    assert (v.user_token(0), v.user_token(1), v.anon_token) == (100, 101, 102)
    assert v.item_tokens([0, 2]) == [103, 105] and v.size == 106
    assert v.user_token(None) == v.anon_token
    assert v.item_row("x:3") == 2 and v.item_row("nope") is None and v.user_row("b") == 1
    with pytest.raises(IndexError):
        v.item_tokens([3])
    with pytest.raises(ValueError, match="unique"):
        SoftVocab(100, ("a", "a"), ("x:1",))


def test_prompts_keep_ids_whole_and_label_only_predicted_positions():
    catalog, ratings, _, _ = synthetic(n_users=4)
    tok = word_tokenizer(list(SNIPPETS))
    data = build_training_data(ratings, catalog, len(tok))
    p = Prompter(tok, data.vocab)
    ids, start = p.collaborative(1, [3, 5])
    assert ids[0] == data.vocab.user_token(1) and ids[start:] == data.vocab.item_tokens([3, 5])
    b = pad([ids, ids[:-1]], [start, start], lambda nxt: nxt - data.vocab.item_base)
    assert b.labels[0].tolist().count(IGNORE) == len(ids) - 2  # only the two item positions are predicted
    assert b.labels[0, start - 1] == 3 and b.labels[0, start] == 5
    assert b.mask[1].sum() == len(ids) - 1 and b.last.tolist() == [len(ids) - 1, len(ids) - 2]
    rec = p.recommendation(None, [3])
    assert rec[0] == data.vocab.anon_token and data.vocab.item_tokens([3])[0] in rec


def test_training_data_keeps_time_order_and_filters_ratings():
    catalog = Catalog([Item(id=f"x:{i}", title=f"T{i}") for i in range(3)])
    r = Ratings(np.array([0, 0, 0, 1]), np.array([2, 0, 1, 1]), np.array([5, 2, 4, 5], np.float32),
                np.array([30, 10, 10, 5]), ("u0", "u1"))
    data = build_training_data(r, catalog, 10, min_rating=3.0)
    assert data.user_items[0].tolist() == [1, 2]  # the 2-star rating dropped; time order
    assert data.n_interactions == 3 and "T1" in data.user_docs[0]


def test_prepare_backbone_cuts_and_freezes():
    bb = prepare_backbone(tiny_backbone(50, layers=3), 2, 1)
    dec = bb.get_decoder()
    assert len(dec.layers) == 2 and bb.config.num_hidden_layers == 2
    trainable = {n.split(".")[2] for n, p in bb.named_parameters() if p.requires_grad and ".layers." in n}
    assert trainable == {"1"}
    assert not bb.get_input_embeddings().weight.requires_grad
    with pytest.raises(ValueError, match="layers must be"):
        prepare_backbone(tiny_backbone(50, layers=2), 5, 0)


# --- learning ------------------------------------------------------------------------------------------------------

def test_learns_the_taste_groups(trained):
    rec, data, held, group, tlog, _ = trained
    scores = rec.score_histories(list(data.user_items), list(range(len(held))))
    for u, rows in enumerate(data.user_items):
        scores[u, rows] = -np.inf
    top3 = np.argsort(-scores, axis=1, kind="stable")[:, :3]
    in_group = (top3 // PER_GROUP == group[:, None]).mean()
    hit3 = np.mean([held[u] in top3[u] for u in range(len(held))])
    # Three unseen items of the user's group are left, one of them held out; chance is 3 / 27 for each.
    assert in_group >= 0.8, in_group
    assert hit3 >= 0.6, hit3
    fine = [v for p, _, v in tlog.steps if p == "finetune"]
    assert np.mean(fine[-4:]) < np.mean(fine[:4])
    assert {p for p, _, _ in tlog.steps} == {"collab", "content", "finetune"}


def test_anonymous_user_is_served_from_liked_ids(trained):
    rec, data, held, group, _, catalog = trained
    liked = [catalog.id_of(r) for r in data.user_items[0]]
    out = rec.recommend(liked, k=3)
    assert not set(out.ids) & set(liked)
    assert np.mean([catalog.row(i) // PER_GROUP == group[0] for i in out.ids]) >= 2 / 3


def test_head_ranks_every_item_exactly_once(trained):
    rec, data, _, _, _, catalog = trained
    scores = rec.score_histories([data.user_items[1], np.zeros(0, np.int64)], [1, None])
    assert scores.shape == (2, len(catalog)) and np.isfinite(scores).all()
    everything = rec.recommend([], k=len(catalog) + 5)
    assert sorted(everything.ids) == sorted(catalog.ids)
    liked = [catalog.id_of(r) for r in data.user_items[1]]
    rest = rec.recommend(liked, k=len(catalog), exclude=["syn:0"])
    assert len(rest) == len(set(rest.ids)) == len(catalog) - len(set(liked) | {"syn:0"})
    assert list(rest.scores) == sorted(rest.scores, reverse=True)


def test_reranker_stays_inside_the_candidates(trained):
    rec, data, _, group, _, catalog = trained
    liked = [catalog.id_of(r) for r in data.user_items[0]]
    cands = ["syn:31", "syn:9", "nope:1", "syn:9", liked[0], "syn:1"]
    known = set(cands) - {"nope:1"}
    out = rec.rank_candidates(liked, cands)
    assert set(out.ids) == known and len(out.ids) == len(known)
    assert rec.rank_candidates(liked, ["nope:1"]).ids == ()


def test_save_load_round_trip(trained, tmp_path):
    rec, data, _, _, _, _ = trained
    rec.save(tmp_path / "m")
    back = CLLMRecommender.load(tmp_path / "m", device="cpu")
    assert back.vocab.item_ids == rec.vocab.item_ids and back.vocab.user_ids == rec.vocab.user_ids
    assert back.max_items == FAST.max_items and back.meta["config"]["finetune_epochs"] == FAST.finetune_epochs
    hist = [data.user_items[2], data.user_items[3]]
    np.testing.assert_allclose(back.score_histories(hist, [2, None]), rec.score_histories(hist, [2, None]),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(CLLMLoadError, match="not a CLLM4Rec model folder"):
        CLLMRecommender.load(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cllm4rec.json").write_text("{", encoding="utf-8")
    with pytest.raises(CLLMLoadError, match="not valid JSON"):
        CLLMRecommender.load(tmp_path / "bad")


# --- the real backbone ------------------------------------------------------------------------------------------

@requires_smol
def test_smollm2_backbone_trains_on_a_small_problem(tmp_path):
    from retrieval.lm_loading import load_lm
    from tests.conftest import TEST_CACHE

    lm = load_lm(GGUF_DIR / SMOL, cache_dir=TEST_CACHE, device="cpu")
    catalog, ratings, held, group = synthetic(n_users=16, liked=5)
    data = build_training_data(ratings, catalog, lm.model.get_input_embeddings().num_embeddings)
    cfg = CLLMConfig(layers=2, train_layers=1, pretrain_epochs=1, finetune_epochs=3, batch_size=8, max_items=8,
                     content_tokens=12, autocast=False)
    model, tlog = train_cllm(lm.model, lm.tokenizer, data, cfg, progress=False)
    assert len(model.backbone.get_decoder().layers) == 2
    assert {p for p, _, _ in tlog.steps} == {"collab", "content", "finetune"}
    assert all(np.isfinite(v) for _, _, v in tlog.steps)
    # SmolLM2's own vocabulary is untouched: the soft tokens live after its 49,152 text tokens.
    assert data.vocab.user_base == 49152 and model.backbone.get_input_embeddings().num_embeddings == 49152
    rec = CLLMRecommender.from_training(model, lm.tokenizer, cfg)
    rec.save(tmp_path / "smol")
    back = CLLMRecommender.load(tmp_path / "smol", device="cpu")
    hist = [data.user_items[0]]
    np.testing.assert_allclose(back.score_histories(hist, [0]), rec.score_histories(hist, [0]), rtol=1e-3,
                               atol=1e-3)
    out = back.rank_candidates([catalog.id_of(r) for r in data.user_items[0]], ["syn:1", "syn:20", "syn:30"])
    assert sorted(out.ids) == ["syn:1", "syn:20", "syn:30"]


# --- the app's reranker ----------------------------------------------------------------------------------------

def _candidates(catalog, ids):
    from chatrec.candidates_turn import Candidate, CandidateSet

    return CandidateSet(tuple(Candidate(catalog[i], float(len(ids) - n), ("als",)) for n, i in enumerate(ids)))


def test_cllm_rerank_stays_inside_candidates_and_falls_back(trained):
    from chatrec.rerank import cllm_rerank

    rec, data, _, group, _, catalog = trained
    liked = [catalog.id_of(r) for r in data.user_items[0]]
    others = Catalog([Item(id="book:1", title="A book", domain="book")], "books")
    both = catalog.merged(others)
    ids = ["book:1", "syn:31", "syn:9", "syn:1", "syn:2", "syn:17"]
    cands = _candidates(both, ids)
    out = cllm_rerank(rec, cands, 4, liked)
    assert out.method == "cllm" and out.fallback is None and len(out.ids) == 4
    assert set(out.ids) <= set(ids) and "book:1" not in out.ids  # the model's items come first
    assert list(out.ids) == list(rec.rank_candidates(liked, ids).ids[:4])
    assert cllm_rerank(None, cands, 3, liked).fallback == "config"
    assert cllm_rerank(None, cands, 3, liked).ids == tuple(ids[:3])
    broken = CLLMRecommender(rec.model, None)  # no tokenizer: the prompt cannot be written
    failed = cllm_rerank(broken, cands, 3, liked)
    assert (failed.method, failed.fallback, failed.ids) == ("score", "unavailable", tuple(ids[:3]))
    books_only = cllm_rerank(rec, _candidates(both, ["book:1"]), 3, liked)
    assert books_only.ids == ("book:1",) and books_only.fallback is None


def test_bootstrap_loads_the_model_only_for_its_catalog(trained, tmp_path):
    from chatrec.bootstrap import _load_cllm
    from chatrec.settings import Settings

    rec, _, _, _, _, catalog = trained
    rec.save(tmp_path / "m")
    model, note = _load_cllm(Settings(rerank="cllm", cllm_model=tmp_path / "m"), catalog)
    assert note is None and model.vocab.item_ids == catalog.ids
    other = Catalog([Item(id=f"ml100k:{i}", title=f"T{i}") for i in range(10)], "ml-100k")
    model, note = _load_cllm(Settings(rerank="cllm", cllm_model=tmp_path / "m"), other)
    assert model is None and "0 of the 10" in note
    model, note = _load_cllm(Settings(rerank="cllm"), catalog)
    assert model is None and "--cllm-model" in note
    model, note = _load_cllm(Settings(rerank="cllm", cllm_model=tmp_path / "nothing"), catalog)
    assert model is None and "not loaded" in note

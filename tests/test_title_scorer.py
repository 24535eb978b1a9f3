"""LMRecSys title scorer on a real (tiny) causal LM: known-answer checks against plain forward passes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from retrieval.lm_loading import load_lm
from retrieval.title_scorer import TEMPLATES, TitleScorer, TitleScoringError, rerank
from retrieval.types import Scored, UnknownItemError
from tests.conftest import TEST_CACHE, has_data
from tests.test_lm_loading import GGUF_DIR, SMOL, requires_smol

pytestmark = requires_smol

HISTORY = ["Toy Story", "Jumanji", "Heat", "GoldenEye", "Casino"]
# Mixed lengths on purpose: 1 token (" Z"), a few tokens, and one longer than max_title_tokens.
TITLES = ["Z", "The Matrix", "Fargo", "Schindler's List", "Babe",
          "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb"]
ATOL = 2e-4  # fp32 on CPU: the cached/batched and plain passes add the same numbers in a different order


@pytest.fixture(scope="module")
def lm():
    return load_lm(GGUF_DIR / SMOL, cache_dir=TEST_CACHE, device="cpu")


@pytest.fixture(scope="module")
def scorer(lm):
    return TitleScorer(lm.model, lm.tokenizer, device="cpu")


def forward_logprobs(lm, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return lm.model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)


def plain_exact(lm, prompt: str, title: str, max_tokens: int | None = 10) -> np.ndarray:
    """Per-token log p(t_j | prompt, t_<j) from ONE plain forward pass of prompt + title (no cache, no batch)."""
    p = lm.tokenizer(prompt)["input_ids"]
    t = lm.tokenizer(" " + title, add_special_tokens=False)["input_ids"][:max_tokens]
    lp = forward_logprobs(lm, p + t)
    return np.array([float(lp[len(p) - 1 + j, tok]) for j, tok in enumerate(t)])


@pytest.fixture(scope="module")
def plain_sums(lm):
    prompt = TEMPLATES["en"].build(HISTORY)
    return np.array([plain_exact(lm, prompt, t).sum() for t in TITLES])


@pytest.fixture(scope="module")
def batched(scorer):
    return scorer.score(HISTORY, TITLES)


def test_exact_equals_plain_forward_sum(scorer, plain_sums, batched):
    np.testing.assert_allclose(batched, plain_sums, atol=ATOL, rtol=0)
    np.testing.assert_allclose(scorer.naive_scores(HISTORY, TITLES[1:3]), plain_sums[1:3], atol=ATOL, rtol=0)
    assert batched.dtype == np.float64 and np.all(batched < 0)


def test_batching_never_changes_scores(lm, scorer, batched):
    one_by_one = TitleScorer(lm.model, lm.tokenizer, device="cpu", batch_size=1)
    np.testing.assert_allclose(one_by_one.score(HISTORY, TITLES), batched, atol=ATOL, rtol=0)
    # Reordering and duplicating candidates changes neither a score nor its position in the output.
    perm = [3, 0, 5, 1, 1, 4, 2]
    np.testing.assert_allclose(scorer.score(HISTORY, [TITLES[i] for i in perm]), batched[perm], atol=ATOL, rtol=0)


def test_mean_divides_by_the_titles_own_token_count(lm, scorer, batched):
    mean = TitleScorer(lm.model, lm.tokenizer, device="cpu", reduce="mean")
    n = np.array([len(ids) for ids in scorer.title_ids(TITLES)])
    assert n.max() == 10 and n.min() == 1  # the long title is truncated to max_title_tokens
    np.testing.assert_allclose(mean.score(HISTORY, TITLES) * n, batched, atol=ATOL * 10)


def test_truncation_to_max_title_tokens(lm):
    three = TitleScorer(lm.model, lm.tokenizer, device="cpu", max_title_tokens=3)
    prompt = TEMPLATES["en"].build(HISTORY)
    long = TITLES[-1]
    np.testing.assert_allclose(three.score(HISTORY, [long])[0], plain_exact(lm, prompt, long, 3).sum(), atol=ATOL)
    full = TitleScorer(lm.model, lm.tokenizer, device="cpu", max_title_tokens=None)
    assert len(full.title_ids([long])[0]) > 10
    np.testing.assert_allclose(full.score(HISTORY, [long])[0], plain_exact(lm, prompt, long, None).sum(), atol=ATOL)


def test_title_longer_than_the_context_is_cut_to_the_room_left(lm):
    small = TitleScorer(lm.model, lm.tokenizer, device="cpu", max_title_tokens=None, max_context=40)
    p_len = len(small.prompt_ids(TEMPLATES["en"].build(HISTORY)))
    [ids] = small.title_ids([" ".join(["Love"] * 100)], p_len)
    assert len(ids) == 40 - p_len
    assert np.isfinite(small.score(HISTORY, [" ".join(["Love"] * 100)])[0])
    with pytest.raises(TitleScoringError, match="shorten the history"):
        small.score(HISTORY * 10, ["Fargo"])


def test_calibration_is_raw_minus_neutral(lm, scorer, batched):
    raw = batched
    neutral = scorer.score([], TITLES)  # empty history = the neutral prompt, by definition
    expected = np.array([plain_exact(lm, TEMPLATES["en"].neutral, t).sum() for t in TITLES])
    np.testing.assert_allclose(neutral, expected, atol=ATOL, rtol=0)
    np.testing.assert_allclose(scorer.score(HISTORY, TITLES, calibrate=True), raw - neutral, atol=1e-9)
    np.testing.assert_allclose(scorer.score([], TITLES, calibrate=True), 0.0, atol=1e-9)
    np.testing.assert_allclose(scorer.neutral_scores(TITLES), neutral, atol=1e-9)  # cached, same numbers


def test_o1_scores_every_token_at_the_next_token_position(lm):
    o1 = TitleScorer(lm.model, lm.tokenizer, device="cpu", mode="o1")
    prompt_ids = lm.tokenizer(TEMPLATES["en"].build(HISTORY))["input_ids"]
    lp = forward_logprobs(lm, prompt_ids)[-1]
    expected = [sum(float(lp[t]) for t in ids) for ids in o1.title_ids(TITLES)]
    np.testing.assert_allclose(o1.score(HISTORY, TITLES), expected, atol=ATOL, rtol=0)


def test_oL_matches_exact_on_the_greedy_continuation(lm, scorer):
    ol = TitleScorer(lm.model, lm.tokenizer, device="cpu", mode="oL")
    prompt = TEMPLATES["en"].build(HISTORY)
    ids = lm.tokenizer(prompt)["input_ids"]
    greedy = []
    for _ in range(4):
        greedy.append(int(forward_logprobs(lm, ids + greedy)[-1].argmax()))
    # On the model's own greedy tokens O(L) conditions on exactly the title's prefix, so it equals exact.
    [got] = ol.token_logprobs(prompt, [greedy])
    [ref] = scorer.token_logprobs(prompt, [greedy])
    np.testing.assert_allclose(got, ref, atol=ATOL, rtol=0)
    # Its first token is always the O(1) / exact first-token score.
    o1 = TitleScorer(lm.model, lm.tokenizer, device="cpu", mode="o1")
    np.testing.assert_allclose(ol.score(HISTORY, ["Z"]), o1.score(HISTORY, ["Z"]), atol=1e-9)


def test_bad_and_odd_input(scorer):
    assert scorer.score(HISTORY, []).shape == (0,)
    with pytest.raises(TitleScoringError, match="title 1 is empty"):
        scorer.score(HISTORY, ["Fargo", "   "])
    # Byte-level BPE has no unknown token: private-use / control characters still get a finite score.
    odd = scorer.score(HISTORY, ["\ue000\ue001\x07", "🦄🦄"])
    assert np.all(np.isfinite(odd))
    with pytest.raises(TitleScoringError, match="unknown template"):
        scorer.score(HISTORY, ["Fargo"], template="fr")
    with pytest.raises(TitleScoringError, match="mode must be"):
        TitleScorer(scorer.model, scorer.tokenizer, mode="fast")


def test_korean_template_scores_and_costs_more_prompt_tokens(scorer):
    ko = scorer.score(HISTORY, TITLES[:3], template="ko")
    assert np.all(np.isfinite(ko))
    en_len = len(scorer.prompt_ids(TEMPLATES["en"].build(HISTORY)))
    ko_len = len(scorer.prompt_ids(TEMPLATES["ko"].build(HISTORY)))
    assert ko_len > en_len  # Hangul costs several byte-level tokens per syllable in an English-centric vocab


def test_rerank_orders_candidates_by_lm_score(scorer, batched):
    ids = tuple(f"ml1m:{i}" for i in range(len(TITLES)))
    cands = Scored(ids, np.linspace(1.0, 0.5, len(ids)))  # e.g. an ALS list, best first
    titles = dict(zip(ids, TITLES))
    out = rerank(scorer, ["Alien", *HISTORY], cands, titles, calibrate=False)
    assert sorted(out.ids) == sorted(ids)
    # Only the last 5 history titles are used, so the order is that of the plain LM scores.
    assert list(out.ids) == [ids[i] for i in np.argsort(-batched, kind="stable")]
    assert np.all(np.diff(out.scores) <= 0)
    assert len(rerank(scorer, HISTORY, Scored.empty(), titles)) == 0
    with pytest.raises(UnknownItemError, match="no title"):
        rerank(scorer, HISTORY, cands, {ids[0]: "Fargo"})
    blended = rerank(scorer, HISTORY, cands, titles, calibrate=False, blend=1e6)
    assert blended.ids == ids  # a huge blend weight returns the generator's own order


def test_rejects_a_model_that_cannot_generate(lm):
    class NotCausal:
        config = lm.model.config

    with pytest.raises(TitleScoringError, match="not a causal LM"):
        TitleScorer(NotCausal(), lm.tokenizer)


def test_rerank_an_als_candidate_list(scorer):
    import scipy.sparse as sp

    from retrieval.candidates import ALSConfig, ALSGenerator
    from retrieval.types import Catalog, Interactions, Item

    names = ["Toy Story", "Heat", "Fargo", "The Matrix", "Babe", "Alien", "Casino", "Jumanji"]
    catalog = Catalog([Item(id=f"ml1m:{i}", title=t) for i, t in enumerate(names)], "tiny")
    m = sp.csr_matrix(np.array([[1, 1, 0, 1, 0, 0, 1, 0],
                                [0, 1, 1, 0, 1, 0, 0, 1],
                                [1, 0, 0, 1, 0, 1, 1, 0],
                                [1, 1, 1, 0, 0, 1, 0, 0]], dtype=np.float32))
    als = ALSGenerator(ALSConfig(factors=4, iterations=3, num_threads=1)).fit(Interactions(m, ["u1", "u2", "u3", "u4"]),
                                                                               catalog)
    cands = als.recommend("u1", k=4)
    assert len(cands) == 4
    out = rerank(scorer, ["Toy Story", "Heat", "Casino"], cands, {it.id: it.title for it in catalog}, calibrate=True)
    assert sorted(out.ids) == sorted(cands.ids) and np.all(np.diff(out.scores) <= 0)
    expected = scorer.score(["Toy Story", "Heat", "Casino"], [catalog[i].title for i in cands.ids], calibrate=True)
    np.testing.assert_allclose(np.sort(expected)[::-1], out.scores, atol=1e-5)


@pytest.mark.skipif(not has_data("ml-latest-small", "goodbooks-10k"), reason="needs ml-latest-small and goodbooks-10k")
def test_engine_reranks_with_the_title_scorer(scorer):
    """rerank=lm end to end: the real scorer orders the turn's candidates (no fallback notice means it ran)."""
    from tests.test_engine import check_reply, make_engine, run_turn

    eng = make_engine(rerank="lm", n_candidates=10, n_recs=3)
    eng.scorer = scorer
    s = eng.new_session("en")
    r = run_turn(eng, s, "I loved The Matrix, recommend something similar")
    check_reply(eng, s, r, "en")
    assert r.order[0] == "Progress" and not [n for n in r.notices if n.kind == "fallback"]
    assert len(r.cards) == 3

"""Cold start on real data: index ML-1M (movies up to 2000), add post-2000 ml-latest-small movies that ML-1M and
its ALS never saw, through `chatrec-index add --file`, and find them by description in English and Korean."""
from __future__ import annotations

import shutil

import pytest

from chatrec.index_cli import main as index_main
from retrieval.documents import write_items_csv, with_avg_ratings
from retrieval.embeddings import make_embedder
from retrieval.knowledge import KnowledgeConfig, KnowledgeStore
from tests.conftest import has_data
from tests.test_knowledge_quality import cached_index_dir

pytestmark = pytest.mark.skipif(not has_data("ml-1m", "ml-latest-small"), reason="needs ml-1m and ml-latest-small")

NEW = ("mls:79132", "mls:109487", "mls:68954", "mls:134130", "mls:115713")  # Inception, Interstellar, Up, ...
QUERIES = {
    "a thief who steals corporate secrets by entering people's dreams": "mls:79132",
    "explorers travel through a wormhole to find a new home for humanity": "mls:109487",
    "a 78-year-old widower gets a new lease on life from a young wilderness explorer": "mls:68954",
    "an astronaut left behind alone on Mars has to grow food to survive": "mls:134130",
    "a programmer tests whether a humanoid robot has real consciousness": "mls:115713",
    "화성에 홀로 남겨진 우주비행사의 생존기": "mls:134130",
    "꿈속에 들어가 생각을 훔치는 도둑": "mls:79132",
}


@pytest.fixture(scope="module")
def ml1m_index(ml1m, tmp_path_factory):
    embedder = make_embedder()
    cached = cached_index_dir(with_avg_ratings(ml1m.catalog, ml1m.ratings), embedder)
    work = tmp_path_factory.mktemp("coldstart") / "chroma"
    shutil.copytree(cached, work)  # the test adds items: never into the shared cache
    return work, embedder


def test_new_movies_are_found_after_add(ml1m_index, ml1m, ml_small, tmp_path, capsys):
    path, embedder = ml1m_index
    new_items = [ml_small.catalog[i] for i in NEW]
    assert all(it.year and it.year > 2000 for it in new_items)
    assert not any(it.title == n.title for it in ml1m.catalog for n in new_items)  # ML-1M lacks them

    before = KnowledgeStore.open(KnowledgeConfig(path=path, progress=False), embedder)
    assert before.count() == len(ml1m.catalog)
    assert not set(NEW) & set(before.search(next(iter(QUERIES)), k=10).scored.ids)

    csv_path = tmp_path / "new_items.csv"
    write_items_csv(new_items, csv_path)
    assert index_main(["add", "--file", str(csv_path), "--path", str(path), "--no-progress"]) == 0
    assert f"{len(NEW)} added" in capsys.readouterr().out

    after = KnowledgeStore.open(KnowledgeConfig(path=path, progress=False), embedder)
    assert after.count() == len(ml1m.catalog) + len(NEW)
    for query, want in QUERIES.items():
        top = after.search(query, k=10, domain="movie").scored.ids
        assert want in top, (query, [after.item(i).label for i in top])
    # "more like Interstellar" can now start from a cold-start item
    assert after.similar_to(["mls:109487"], k=10).scored.ids

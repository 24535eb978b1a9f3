import pytest

from retrieval.titles import normalise_title, split_year, title_key


@pytest.mark.parametrize("raw,title,year,alts", [
    ("Shawshank Redemption, The (1994)", "The Shawshank Redemption", 1994, ()),
    ("City of Lost Children, The (Cité des enfants perdus, La) (1995)", "The City of Lost Children", 1995,
     ("La Cité des enfants perdus",)),
    ("Seven (a.k.a. Se7en) (1995)", "Seven", 1995, ("Se7en",)),
    ("Babylon 5", "Babylon 5", None, ()),
    ("Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1964)",
     "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb", 1964, ()),
    ("Deadpool 2 (2018)", "Deadpool 2", 2018, ()),
    ("Enfant, L' (2005)", "L'Enfant", 2005, ()),
])
def test_normalise_title(raw, title, year, alts):
    assert normalise_title(raw) == (title, year, alts)


def test_split_year_and_key():
    assert split_year("Fargo (1996)") == ("Fargo", 1996)
    assert split_year("Stranger Things (2016-)") == ("Stranger Things", 2016)
    assert title_key("The Shawshank Redemption") == "shawshank redemption"
    assert title_key("Léon: The Professional") == "leon the professional"
    assert title_key("Harry Potter & the Goblet") == "harry potter and the goblet"

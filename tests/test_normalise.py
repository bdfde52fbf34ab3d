"""The cell macros of recon.normalise against the Python they stand for."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import normalise

# Blanks, the printable ASCII around the fast path's bounds, and other text.
CHARS = st.sampled_from(list(normalise.BLANKS) + list("!~AZaz09@'\"\x7f\x80\x84é€ſ\u200b"))
CON = duckdb.connect()
normalise.trim_macro(CON)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(CHARS, max_size=6), min_size=1, max_size=20))
def test_recon_trim_is_python_strip(values):
    got = [
        r[0] for r in CON.execute("SELECT recon_trim(v) FROM unnest(?) t(v)", [values]).fetchall()
    ]
    assert got == [v.strip() for v in values]


def test_recon_trim_keeps_null():
    con = duckdb.connect()
    normalise.trim_macro(con)
    assert con.execute("SELECT recon_trim(NULL::VARCHAR)").fetchall() == [(None,)]

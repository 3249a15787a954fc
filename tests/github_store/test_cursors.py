"""A listing cursor of the GitHub store names a page of its own listing, never a URL."""

from __future__ import annotations

import base64
import json

import pytest

from octoqueue.stores.github.listing import decode_cursor, encode_cursor

from .conftest import MakeStore


def test_a_cursor_carries_only_listing_parameters(make_store: MakeStore) -> None:
    store = make_store()
    cursor = encode_cursor("https://elsewhere.example/repositories/9/issues?state=open&page=3&per_page=1&token=x", 5)
    assert decode_cursor(store, cursor) == (store._issues_url(state="open", page="3"), 5)
    assert "per_page=100" in decode_cursor(store, cursor)[0]  # a cursor cannot make pages smaller (more requests)
    for forged in ({"q": [["url", "https://evil.example/"]], "s": 0}, {"u": "https://evil.example/", "s": 0}):
        raw = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        with pytest.raises(ValueError, match="not a cursor"):
            decode_cursor(store, raw)

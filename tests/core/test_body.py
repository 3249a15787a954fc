"""The issue body format: the original's fenced JSON plus octoqueue's hidden metadata."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from octoqueue import body
from octoqueue.errors import InvalidJobData, JobTooLarge

ORIGINAL = "```json\n" + json.dumps({"data": "example", "n": 1}, ensure_ascii=False, indent=2) + "\n```"


def test_reads_bodies_written_by_the_original_octoqueue() -> None:
    parsed = body.parse(ORIGINAL)
    assert parsed.error is None
    assert parsed.data == {"data": "example", "n": 1}
    assert parsed.meta == {}


def test_nested_objects_and_backticks_in_strings() -> None:
    data = {"outer": {"inner": [1, {"deep": True}]}, "md": "use ```json\n{}\n``` blocks", "tick": "`"}
    original_style = "```json\n" + json.dumps(data, ensure_ascii=False, indent=2) + "\n```"
    assert body.parse(original_style).data == data
    assert body.parse(body.render(data, {"attempt": 2})).data == data


def test_render_then_parse_keeps_meta() -> None:
    meta = {"attempt": 3, "max_attempts": 5, "last_error": "x --> y <!-- z", "worker": "h:1"}
    text = body.render({"a": 1}, meta)
    assert "<!-- octoqueue:meta" in text and text.count("-->") == 1
    parsed = body.parse(text)
    assert parsed.data == {"a": 1} and parsed.meta == meta


def test_human_edit_around_the_block_keeps_working() -> None:
    text = body.render({"a": 1}, {"attempt": 1})
    edited = "Please run this again, thanks!\n\n" + text + "\n\n_edited by a person_"
    parsed = body.parse(edited)
    assert parsed.data == {"a": 1} and parsed.meta["attempt"] == 1


def test_plain_json_body_without_fence() -> None:
    assert body.parse('{"a": [1, 2]}').data == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "no job data"),
        (None, "no job data"),
        ("```json\n{not json}\n```", "not valid JSON"),
        ("hello there", "not valid JSON"),
        ('```json\n{"a": 1\n```', "not valid JSON"),
    ],
)
def test_broken_bodies_give_an_error_not_an_exception(text: str | None, needle: str) -> None:
    parsed = body.parse(text)
    assert parsed.data is None
    assert parsed.error is not None and needle in parsed.error


def test_broken_meta_is_ignored_not_fatal() -> None:
    text = ORIGINAL + "\n<!-- octoqueue:meta {broken -->"
    parsed = body.parse(text)
    assert parsed.data == {"data": "example", "n": 1}


def test_size_limit() -> None:
    with pytest.raises(JobTooLarge):
        body.render({"x": "y" * body.MAX_BODY_CHARS}, {})
    with pytest.raises(InvalidJobData):
        body.render({"x": object()}, {})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(data=json_values, error=st.text(max_size=50))
def test_any_json_roundtrips(data: object, error: str) -> None:
    parsed = body.parse(body.render(data, {"attempt": 1, "last_error": error}))
    assert parsed.error is None
    assert parsed.data == data
    assert parsed.meta["last_error"] == error


# An issue body is anyone's text (a person can open or edit an issue): parse must never raise, whatever it holds.
HOSTILE = [
    "1" * 5000,  # an integer past Python's int-conversion limit: ValueError, not JSONDecodeError
    "```json\n" + "[" * 100_000 + "\n```",  # nesting past the recursion limit: RecursionError
    '<!-- octoqueue:meta {"attempt": ' + "9" * 5000 + "} -->\n```json\n1\n```",  # the same inside the meta
    '<!-- octoqueue:meta {"a": ' + "[" * 100_000 + "} -->\n```json\n1\n```",
]


@pytest.mark.parametrize("text", HOSTILE, ids=["huge-int", "deep-data", "huge-int-meta", "deep-meta"])
def test_parse_survives_hostile_bodies(text: str) -> None:
    parsed = body.parse(text)
    assert parsed.error is not None or parsed.data == 1


fence_bits = st.sampled_from(["```", "```json", "~~~", "````", "\n", " ", "<!--", "-->", "octoqueue:meta", "{", "}"])


@given(st.lists(st.one_of(st.text(max_size=20), fence_bits, st.just("1" * 4400)), max_size=12).map("".join))
def test_parse_never_raises(text: str) -> None:
    parsed = body.parse(text)
    assert isinstance(parsed.meta, dict)
    assert (parsed.error is None) or parsed.data is None

"""The test harness's stand-in for the runner: its expression evaluator and output-file parser."""

from __future__ import annotations

import pytest

from .composite import Contexts, UnsupportedExpression, condition, evaluate, parse_command_file, substitute


def contexts() -> Contexts:
    return Contexts(
        inputs={"python-version": "", "max-jobs": "10"},
        github={"token": "t", "action_path": "/a"},
        runner={"temp": "/tmp/r"},
        steps={"install": {"outputs": {"python": "/v/bin/python"}}},
    )


def test_expressions_used_by_action_yml() -> None:
    c = contexts()
    assert substitute("${{ inputs.max-jobs }} ${{github.token}} ${{ runner.temp }}", c) == "10 t /tmp/r"
    assert substitute("${{ steps.install.outputs.python }}", c) == "/v/bin/python"
    assert substitute("${{ steps.work.outputs.processed }}", c) == ""  # a step that has not run
    assert evaluate("inputs.missing", c) == ""
    assert evaluate("'it''s'", c) == "it's"


def test_conditions() -> None:
    c = contexts()
    assert condition(None, c) is True
    assert condition("inputs.python-version != ''", c) is False
    assert condition("${{ inputs.max-jobs == '10' }}", c) is True
    assert condition("inputs.max-jobs", c) is True


def test_and_or_and_event_properties() -> None:
    c = contexts()
    c.github["event_name"] = "issues"
    c.event = {"action": "labeled", "label": {"name": "pending"}, "issue": {"locked": False}}
    assert condition("github.event_name != 'issues' || github.event.label.name == 'pending'", c) is True
    assert condition("github.event.action == 'opened' && github.event.label.name == 'pending'", c) is False
    assert condition("github.event.action == 'labeled' && github.event.label.name == 'pending'", c) is True
    assert evaluate("github.event.missing.deeper", c) == ""
    assert evaluate("github.event.issue.locked", c) == "false"
    assert evaluate("inputs.nothing || inputs.max-jobs", c) == "10"


@pytest.mark.parametrize("text", ["fromJSON(inputs.x)", "(inputs.a && inputs.b)", "secrets.TOKEN", "env.X"])
def test_other_expressions_are_refused(text: str) -> None:
    with pytest.raises(UnsupportedExpression):
        evaluate(text, contexts())


def test_output_files_in_both_forms() -> None:
    text = "a=1\nb<<EOF_1\nline 1\nline=2\nEOF_1\nc=x=y\n\nd<<X\n\nX\n"
    assert parse_command_file(text) == {"a": "1", "b": "line 1\nline=2", "c": "x=y", "d": ""}
    with pytest.raises(ValueError, match="never closed"):
        parse_command_file("a<<EOF\nno end\n")

from __future__ import annotations

import random

import pytest

from octoqueue.errors import InvalidTransition
from octoqueue.retry import RetryPolicy
from octoqueue.states import TRANSITIONS, JobState, LabelScheme, Priority, check_transition


def test_state_values_are_the_labels() -> None:
    assert [s.value for s in JobState] == ["pending", "processing", "completed", "failed", "cancelled"]
    assert {s for s in JobState if s.is_open} == {JobState.PENDING, JobState.PROCESSING}
    assert set(TRANSITIONS) == set(JobState)


def test_label_prefix() -> None:
    scheme = LabelScheme("oq:")
    assert scheme.label(JobState.PENDING) == "oq:pending"
    assert scheme.state_of(["bug", "oq:processing"]) is JobState.PROCESSING
    assert scheme.state_of(["pending"]) is None
    assert scheme.extra(["bug", "oq:failed", "pending"]) == ("bug", "pending")


def test_two_status_labels_most_advanced_wins() -> None:
    assert LabelScheme().state_of(["pending", "completed"]) is JobState.COMPLETED
    assert LabelScheme().state_of(["processing", "pending"]) is JobState.PROCESSING


def test_unlabelled_job_can_only_be_requeued_or_closed() -> None:
    check_transition(1, None, JobState.PENDING)
    with pytest.raises(InvalidTransition, match="without a status label"):
        check_transition(1, None, JobState.COMPLETED)


def test_priority_parse() -> None:
    assert Priority.parse("critical") is Priority.CRITICAL
    assert Priority.parse("4") is Priority.BULK
    with pytest.raises(ValueError):
        Priority.parse(9)


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("exponential", [1, 2, 4, 8, 10]), ("linear", [1, 2, 3, 4, 5]), ("constant", [1, 1, 1, 1, 1])],
)
def test_backoff_strategies(strategy: str, expected: list[float]) -> None:
    policy = RetryPolicy(strategy=strategy, initial=1, max_interval=10, jitter=0)  # type: ignore[arg-type]
    assert [policy.delay(n) for n in range(1, 6)] == expected


def test_jitter_stays_in_band_and_under_cap() -> None:
    policy = RetryPolicy(initial=10, jitter=0.2, max_interval=11)
    rng = random.Random(3)
    delays = [policy.delay(1, rng) for _ in range(200)]
    assert min(delays) >= 8 and max(delays) <= 11
    assert len(set(delays)) > 10

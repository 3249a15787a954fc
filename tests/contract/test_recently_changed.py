"""Store.recently_changed, held against every store: what `octoqueue info` shows as the latest failures."""

from __future__ import annotations

from octoqueue.job import NewJob
from octoqueue.states import JobState
from octoqueue.stores.base import Store


def test_recently_changed_lists_the_last_changed_first(store: Store) -> None:
    ids = [store.create(NewJob(data={"n": n}, title=f"job {n}")).id for n in range(5)]
    for job_id in (ids[3], ids[0], ids[1]):
        store.transition(job_id, expected=JobState.PENDING, target=JobState.FAILED, last_error=f"boom {job_id}")
    store.transition(ids[2], expected=JobState.PENDING, target=JobState.COMPLETED)

    failed = store.recently_changed([JobState.FAILED])
    assert sorted(job.id for job in failed) == sorted([ids[0], ids[1], ids[3]])
    expected = sorted(
        (store.get(i) for i in (ids[0], ids[1], ids[3])), key=lambda j: (j.updated_at, j.id), reverse=True
    )
    assert [job.id for job in failed] == [job.id for job in expected]
    assert all(job.last_error == f"boom {job.id}" for job in failed)
    assert [job.id for job in store.recently_changed([JobState.FAILED], limit=1)] == [expected[0].id]
    finished = store.recently_changed([JobState.FAILED, JobState.COMPLETED], limit=10)
    assert {job.id for job in finished} == {ids[0], ids[1], ids[2], ids[3]}
    assert store.recently_changed([]) == []
    assert [job.id for job in store.recently_changed([JobState.PENDING])] == [ids[4]]

"""What the Redis store adds to the contract: URLs, one hash tag, Redis's clock, one round trip per batch, arrivals
pushed to other processes' stores."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from octoqueue.errors import ConfigurationError, JobNotFound, LeaseLost, StoreUnavailable
from octoqueue.job import NewJob
from octoqueue.states import JobState
from octoqueue.stores import open_store
from octoqueue.stores.base import Arrival, Move
from octoqueue.stores.redis import RedisStore
from tests.redis_store.server import REDIS_URL, private_redis
from tests.server.conftest import free_port


def new(i: int = 0, **kw: Any) -> NewJob:
    return NewJob(data={"i": i}, title=f"job {i}", **kw)


def test_url_options_and_redaction() -> None:
    store = open_store("redis://:s3cret@127.0.0.1:6379/0?prefix=myq&socket_timeout=3")
    try:
        assert isinstance(store, RedisStore)
        assert store.prefix == "myq"
        assert "s3cret" not in store.url and "***" in store.url
        assert store._client.connection_pool.connection_kwargs["socket_timeout"] == 3.0
    finally:
        store.close()
    default = open_store("redis://127.0.0.1:6379")
    try:
        assert isinstance(default, RedisStore) and default.prefix == "oq"
    finally:
        default.close()


@pytest.mark.parametrize("prefix", ["a{b", "a:b", " a", "x}"])
def test_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        RedisStore.from_url(f"{REDIS_URL}?prefix={prefix}")


@pytest.mark.parametrize(
    ("query", "says"),
    [("prefix=x&bogus=1", "bogus"), ("socket_timeout=soon", "socket_timeout"), ("", "database number")],
)
def test_bad_url_options_are_refused_when_opening(query: str, says: str) -> None:
    url = f"redis://127.0.0.1:6379/{'abc' if not query else '0'}?{query}"
    with pytest.raises(ConfigurationError, match=says):
        RedisStore.from_url(url)


def test_empty_prefix_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        RedisStore.from_url(f"{REDIS_URL}?prefix=")


def test_unreachable_redis_is_store_unavailable() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0?prefix=nowhere&socket_connect_timeout=1")
    try:
        with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1"):
            store.create(new())
    finally:
        store.close()


def test_every_key_shares_the_queue_hash_tag(store: RedisStore) -> None:
    job = store.create(new(labels=("gpu",), type="t", idempotency_key="k"))
    store.create(new(1, run_at=store.now() + timedelta(hours=1)))
    (claimed,) = store.claim(worker="w", lease=60)
    store.comment(job.id, "hello")
    store.transition(claimed.id, expected=JobState.PROCESSING, target=JobState.COMPLETED)
    store.set_setting("s", {"x": 1})
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    keys = list(client.scan_iter(match=f"*{store.prefix}*", count=1000))
    client.close()
    assert keys and all(key.startswith("{" + store.prefix + "}:") for key in keys)
    slots = {redis.cluster.key_slot(key.encode()) for key in keys}
    assert len(slots) == 1


def test_clock_is_redis_time(store: RedisStore) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    seconds, micros = client.time()
    client.close()
    mine = store.now()
    assert abs(mine.timestamp() - (seconds + micros / 1e6)) < 0.5
    before = store.now()
    store.create(new())
    (job,) = store.claim(worker="w", lease=10)
    assert job.lease_expires_at is not None
    assert timedelta(seconds=10) <= job.lease_expires_at - before <= timedelta(seconds=11)


class _Counter:
    """Counts the commands this process sends to Redis (each one round trip)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        original = redis.connection.AbstractConnection.send_packed_command

        def counted(conn: Any, command: Any, *args: Any, **kw: Any) -> Any:
            packed = b"".join(command) if isinstance(command, (list, tuple)) else command
            self.calls.append(packed.split(b"\r\n")[2].decode())  # *<n>, $<length>, then the command's name
            return original(conn, command, *args, **kw)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)


def test_create_many_is_one_round_trip_and_keeps_idempotency(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.create(new(0, idempotency_key="once"))
    counter = _Counter(monkeypatch)
    jobs = store.create_many(
        [new(1), new(2, idempotency_key="once"), new(3, idempotency_key="twice"), new(4, idempotency_key="twice")]
    )
    assert counter.calls == ["EVALSHA"]
    assert jobs[1].id == first.id and jobs[1].data == {"i": 0}
    assert jobs[2].id == jobs[3].id and jobs[3].data == {"i": 3}
    assert len({jobs[0].id, jobs[1].id, jobs[2].id}) == 3
    assert [j.data for j in store.iter_jobs()] == [{"i": 0}, {"i": 1}, {"i": 3}]


def test_a_batch_larger_than_one_script_call_takes_is_sent_in_order(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create script call carries at most CREATE_BATCH jobs (9 arguments each: older Redis servers accept at most
    1,048,576 arguments a command); a larger batch is several calls, in order, idempotency keys kept across them."""
    monkeypatch.setattr("octoqueue.stores.redis.store.CREATE_BATCH", 3)
    counter = _Counter(monkeypatch)
    jobs = store.create_many(
        [new(i, type="t", priority=1, timeout=2.5) for i in range(5)]
        + [new(5, idempotency_key="k"), new(6), new(7, idempotency_key="k")]
    )
    assert counter.calls.count("EVALSHA") == 3  # (a fresh connection says HELLO first)
    assert [job.data for job in jobs] == [{"i": i} for i in range(7)] + [{"i": 5}]
    assert jobs[7].id == jobs[5].id
    assert [job.id for job in jobs[:7]] == sorted(job.id for job in jobs[:7])
    assert [(j.data, j.type, j.priority, j.timeout) for j in store.iter_jobs()][:5] == [
        ({"i": i}, "t", 1, 2.5) for i in range(5)
    ]


def test_transition_many_is_one_round_trip_each_move_on_its_own(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_many([new(i) for i in range(3)])
    a, b, c = store.claim(worker="w", lease=60, limit=3)
    counter = _Counter(monkeypatch)
    results = store.transition_many(
        [
            Move(a.id, JobState.PROCESSING, JobState.COMPLETED, a.attempt, {"result": {"ok": 1}}),
            Move(b.id, JobState.PROCESSING, JobState.COMPLETED, b.attempt + 1),
            Move(999_999, None, JobState.CANCELLED),
            Move(c.id, JobState.PROCESSING, JobState.PENDING, c.attempt, {"run_at": None, "last_error": "again"}),
        ]
    )
    assert counter.calls == ["EVALSHA"]
    done, lost, missing, back = results
    assert not isinstance(done, Exception) and done.state is JobState.COMPLETED and done.result == {"ok": 1}
    assert isinstance(lost, LeaseLost) and isinstance(missing, JobNotFound)
    assert not isinstance(back, Exception) and back.state is JobState.PENDING and back.worker is None
    assert store.get(b.id).state is JobState.PROCESSING
    assert store.count() == {
        JobState.PENDING: 1,
        JobState.PROCESSING: 1,
        JobState.COMPLETED: 1,
        JobState.FAILED: 0,
        JobState.CANCELLED: 0,
    }


def test_transition_and_claim_is_one_round_trip(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.create_many([new(i) for i in range(4)])
    a, b = store.claim(worker="w", lease=60, limit=2)
    counter = _Counter(monkeypatch)
    moved, taken = store.transition_and_claim(
        [Move(a.id, JobState.PROCESSING, JobState.COMPLETED, a.attempt), Move(b.id, None, JobState.PENDING)],
        worker="w-2",
        lease=60,
        limit=3,
    )
    assert counter.calls == ["EVALSHA"]
    assert [m.state for m in moved if not isinstance(m, Exception)] == [JobState.COMPLETED, JobState.PENDING]
    assert [j.id for j in taken] == [b.id, b.id + 1, b.id + 2]  # b was put back first: it is the oldest again
    assert {j.worker for j in taken} == {"w-2"}


def test_claim_by_type_and_labels_keeps_priority_order(store: RedisStore) -> None:
    store.create_many(
        [
            new(0, type="a", labels=("x",)),
            new(1, type="b", priority=1),
            new(2, type="a", priority=0),
            new(3, type="c"),
            new(4, type="b", labels=("x", "y")),
        ]
    )
    got = store.claim(worker="w", lease=60, limit=10, types=["a", "b"])
    assert [j.data["i"] for j in got] == [2, 1, 0, 4]
    store.create_many([new(5, labels=("x", "y")), new(6, labels=("y",)), new(7, labels=("x", "y"), type="z")])
    assert [j.data["i"] for j in store.claim(worker="w", lease=60, limit=10, labels=["y", "x"], types=["z"])] == [7]
    assert [j.data["i"] for j in store.claim(worker="w", lease=60, limit=10, labels=["x", "y"])] == [5]


def test_a_priority_change_moves_the_job_in_the_claim_order(store: RedisStore) -> None:
    a, b = store.create_many([new(0), new(1)])
    (first,) = store.claim(worker="w", lease=60)
    assert first.id == a.id
    store.transition(first.id, expected=JobState.PROCESSING, target=JobState.PENDING, attempt=first.attempt, priority=4)
    (second,) = store.claim(worker="w", lease=60)
    assert second.id == b.id


def test_purge_removes_keys_and_frees_idempotency_key(store: RedisStore) -> None:
    job = store.create(new(idempotency_key="k"))
    store.comment(job.id, "note")
    store.transition(job.id, expected=JobState.PENDING, target=JobState.CANCELLED)
    assert store.purge(states=[JobState.CANCELLED], older_than=store.now() + timedelta(seconds=1)) == 1
    with pytest.raises(JobNotFound):
        store.comments(job.id)
    again = store.create(new(1, idempotency_key="k"))
    assert again.id != job.id and again.data == {"i": 1}


def test_arrivals_reach_other_store_objects_only(store: RedisStore) -> None:
    other = RedisStore.from_url(f"{REDIS_URL}?prefix={store.prefix}")
    seen: list[Arrival] = []
    mine: list[Arrival] = []
    got = threading.Event()

    def heard(arrival: Arrival) -> None:
        seen.append(arrival)
        got.set()

    try:
        stop = other.watch_arrivals(heard)
        own = store.watch_arrivals(mine.append)
        assert stop is not None and own is not None
        store.create(new(labels=("gpu",)))
        assert got.wait(5)
        assert seen == [Arrival(("gpu",), 1, None)]
        later = store.now() + timedelta(seconds=30)
        got.clear()
        (claimed,) = store.claim(worker="w", lease=60)
        store.transition(claimed.id, expected=JobState.PROCESSING, target=JobState.PENDING, run_at=later)
        assert got.wait(5)
        assert seen[-1].run_at is not None
        assert abs((seen[-1].run_at - later).total_seconds()) < 0.001
        stop()
        store.create(new(2))
        other.create(new(3))  # heard by `store`'s watch
        for _ in range(50):
            if mine:
                break
            threading.Event().wait(0.05)
        assert len(mine) == 1 and len(seen) == 2
    finally:
        other.close()


def test_scripts_are_loaded_again_when_redis_forgot_them(tmp_path: Path) -> None:
    # A private Redis: SCRIPT FLUSH on the shared one would make other test runs' round-trip counts see a reload.
    with private_redis(tmp_path / "redis", free_port()) as server:
        store = RedisStore.from_url(server.url + "?prefix=flush")
        try:
            store.create(new(0))
            store._client.script_flush()  # as after a restart: Redis knows no script
            job = store.create(new(1))
            assert store.get(job.id).data == {"i": 1}
        finally:
            store.close()


def test_a_thread_gives_its_connection_back_when_it_ends(store: RedisStore) -> None:
    store.create(new(0))
    pool = store._client.connection_pool
    before = len(pool._in_use_connections)

    def use() -> None:
        store.get(1)

    for _ in range(20):
        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
    assert len(pool._in_use_connections) <= before + 1


def _listed(store: RedisStore, **options: Any) -> list[int]:
    """Every id of a listing, page by page (small pages, so they cross the script's batches of 200)."""
    ids: list[int] = []
    cursor = None
    while True:
        page = store.list_jobs(cursor=cursor, limit=70, **options)
        ids += [job.id for job in page.jobs]
        if page.cursor is None:
            return ids
        cursor = page.cursor


def test_listing_walks_every_state_set_together_by_id(store: RedisStore) -> None:
    # Jobs of one state in runs longer than a batch, the others scattered: the walk merges the sets by id.
    made = store.create_many([new(i) for i in range(450)])
    done = [job.id for job in made if job.id % 7 == 0 or 100 < job.id <= 330]
    failed = [job.id for job in made if job.id % 11 == 0 and job.id not in done]
    store.transition_many([Move(i, JobState.PENDING, JobState.COMPLETED) for i in done])
    store.transition_many([Move(i, JobState.PENDING, JobState.FAILED) for i in failed])
    every = [job.id for job in made]
    assert _listed(store) == every
    assert _listed(store, states=[JobState.COMPLETED, JobState.FAILED]) == sorted(done + failed)
    assert _listed(store, states=[JobState.FAILED]) == failed
    assert _listed(store, open=True) == [i for i in every if i not in done and i not in failed]
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert client.zcard("{" + store.prefix + "}:ids") == 0  # a job with a state is in its state's set only
    finally:
        client.close()


def test_listing_reads_data_that_kept_every_job_in_the_ids_set(store: RedisStore) -> None:
    # Data written by 0.2.0 and earlier: every job in P:ids besides its state's set; each is listed once.
    made = store.create_many([new(i) for i in range(250)])
    store.transition_many([Move(job.id, JobState.PENDING, JobState.CANCELLED) for job in made[::3]])
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.zadd("{" + store.prefix + "}:ids", {str(job.id): job.id for job in made})
    finally:
        client.close()
    assert _listed(store) == [job.id for job in made]
    assert _listed(store, states=[JobState.CANCELLED]) == [job.id for job in made[::3]]
    assert store.purge(states=[JobState.CANCELLED], older_than=store.now() + timedelta(seconds=1)) == 84
    assert _listed(store) == [job.id for i, job in enumerate(made) if i % 3]


def test_a_job_without_a_state_is_listed_until_it_gets_one(store: RedisStore) -> None:
    job = store.create(new(0))
    store.create(new(1))
    stateless = store.import_job(job.model_copy(update={"state": None}))
    assert stateless.state is None
    assert _listed(store) == [job.id, job.id + 1]
    assert _listed(store, states=[JobState.PENDING]) == [job.id + 1]
    store.transition(job.id, expected=None, target=JobState.PENDING)
    assert _listed(store) == [job.id, job.id + 1]
    assert _listed(store, states=[JobState.PENDING]) == [job.id, job.id + 1]


def test_arrivals_of_an_older_publisher_are_read(store: RedisStore) -> None:
    # From 0.2.0 and earlier, a job's labels came as a string holding their JSON list.
    old = {"type": "message", "data": '{"o": "elsewhere", "j": [[4, "1000000", "[\\"gpu\\"]"], [5, false, "[]"]]}'}
    assert store._arrivals_in(old) == [
        Arrival(("gpu",), 1, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),
        Arrival((), 1, None),
    ]

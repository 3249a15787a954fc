"""The Starq-compatible worker API: queues, submission, long-poll claims, completion, retries, fencing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from octoqueue.states import JobState

from .conftest import LiveServer, headers

Q = "/api/v1/queues"


def make_queue(server: LiveServer, name: str = "work", **config: Any) -> dict[str, Any]:
    response = server.post(Q, json={"name": name, **config}, headers=headers("admin"))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def submit(server: LiveServer, body: dict[str, Any], name: str = "work") -> requests.Response:
    return server.post(f"{Q}/{name}/jobs", json=body, headers=headers("producer"))


def claim(server: LiveServer, name: str = "work", count: int = 1, block_ms: int = 0) -> list[dict[str, Any]]:
    response = server.post(
        f"{Q}/{name}/jobs/claim", json={"count": count, "block_ms": block_ms}, headers=headers("worker")
    )
    assert response.status_code == 200, response.text
    return response.json()["jobs"]  # type: ignore[no-any-return]


def finish(server: LiveServer, job_id: str, verb: str, body: dict[str, Any], name: str = "work") -> requests.Response:
    return server.put(f"{Q}/{name}/jobs/{job_id}/{verb}", json=body, headers=headers("worker"))


# -- queues ------------------------------------------------------------------------------------------------------
def test_queue_lifecycle(server: LiveServer) -> None:
    created = make_queue(server, "emails", max_retries=5, claim_timeout=60, dedupe=True, description="mail")
    assert created["name"] == "emails"
    assert created["label"] == "queue:emails"
    assert (created["max_retries"], created["claim_timeout"], created["dedupe"]) == (5, 60, True)
    assert server.post(Q, json={"name": "emails"}, headers=headers("admin")).status_code == 409
    assert [q["name"] for q in server.get(Q).json()["queues"]] == ["emails"]
    submit(server, {"payload": {"to": "a"}}, "emails")
    info = server.get(f"{Q}/emails").json()
    assert (info["pending"], info["processing"], info["length"], info["completed"]) == (1, 0, 1, None)
    claim(server, "emails")
    full = server.get(f"{Q}/emails", params={"full": "true"}).json()
    assert (full["pending"], full["processing"], full["completed"], full["failed"]) == (0, 1, 0, 0)
    assert server.get(f"{Q}/missing").status_code == 404
    deleted = server.delete(f"{Q}/emails", headers=headers("admin"))
    assert deleted.json() == {"status": "deleted", "queue": "emails", "cancelled": 0}
    assert server.get(f"{Q}/emails").status_code == 404
    assert server.delete(f"{Q}/emails", headers=headers("admin")).status_code == 404


def test_deleting_a_queue_cancels_its_pending_jobs(server: LiveServer) -> None:
    make_queue(server)
    submit(server, {"jobs": [{"payload": {"i": i}} for i in range(3)]})
    response = server.delete(f"{Q}/work", headers=headers("admin"))
    assert response.json()["cancelled"] == 3
    assert server.queue.counts()[JobState.CANCELLED] == 3


@pytest.mark.parametrize("name", ["Upper", "-dash", "with space", "x" * 45, ""])
def test_queue_names_must_fit_a_label(server: LiveServer, name: str) -> None:
    assert server.post(Q, json={"name": name}, headers=headers("admin")).status_code == 422


def test_queue_definitions_are_kept_in_the_store(server: LiveServer) -> None:
    make_queue(server, "kept")
    assert "kept" in server.queue.store.get_setting("queues")


# -- submitting --------------------------------------------------------------------------------------------------
def test_submit_one_and_many(server: LiveServer) -> None:
    make_queue(server, max_retries=2)
    one = submit(server, {"payload": {"a": 1}, "priority": 0}).json()
    assert one["submitted"] == 1 and one["skipped"] == 0
    (job,) = one["jobs"]
    assert job["payload"] == {"a": 1}
    assert job["status"] == "pending"
    assert job["priority"] == 0
    assert job["max_attempts"] == 3
    many = submit(server, {"jobs": [{"payload": {"b": i}} for i in range(4)]}).json()
    assert many["submitted"] == 4
    stored = server.queue.get(job["job_id"])
    assert stored.labels == ("queue:work",)
    assert submit(server, {"payload": {}}, "nope").status_code == 404
    assert submit(server, {"payload": {}, "jobs": [{"payload": {}}]}).status_code == 422


def test_dedupe_skips_identical_payloads_until_the_job_fails(server: LiveServer) -> None:
    make_queue(server, dedupe=True, max_retries=0)
    first = submit(server, {"payload": {"url": "x", "n": 1}}).json()
    again = submit(server, {"payload": {"n": 1, "url": "x"}}).json()
    assert (again["submitted"], again["skipped"]) == (0, 1)
    batch = submit(server, {"jobs": [{"payload": {"u": 2}}, {"payload": {"u": 2}}]}).json()
    assert (batch["submitted"], batch["skipped"]) == (1, 1)
    (claimed,) = claim(server)
    assert claimed["job_id"] == first["jobs"][0]["job_id"]
    finish(server, claimed["id"], "fail", {"error": "boom"})
    assert server.queue.get(claimed["job_id"]).state is JobState.FAILED
    resubmitted = submit(server, {"payload": {"url": "x", "n": 1}}).json()
    assert resubmitted["submitted"] == 1
    assert resubmitted["jobs"][0]["job_id"] == claimed["job_id"]
    assert server.queue.get(claimed["job_id"]).state is JobState.PENDING


def test_payloads_are_validated_against_the_queues_schema_not_the_admin_schema(server: LiveServer) -> None:
    make_queue(server, job_schema={"type": "object", "required": ["to"]})
    make_queue(server, "free")
    admin_schema = {"type": "object", "required": ["only-for-create-job"]}
    assert server.post("/admin/schema", json={"schema": admin_schema}, headers=headers("admin")).status_code == 200
    bad = submit(server, {"jobs": [{"payload": {"to": 1}}, {"payload": {}}]})
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("jobs[1]: Job data does not match required schema: 'to' is a required")
    assert server.queue.count_open() == 0
    assert submit(server, {"payload": {"to": 1}}).status_code == 200
    assert submit(server, {"payload": {"anything": True}}, "free").status_code == 200
    assert server.get(f"{Q}/work").json()["job_schema"] == {"type": "object", "required": ["to"]}
    assert server.get(f"{Q}/free").json()["job_schema"] is None


@pytest.mark.parametrize(
    ("schema", "message"),
    [({"$ref": "#"}, "refers to itself"), ({"pattern": "(a)\\1"}, "regex"), ({"type": "nope"}, "Invalid JSON")],
)
def test_a_queue_schema_is_checked_like_the_admin_schema(
    server: LiveServer, schema: dict[str, Any], message: str
) -> None:
    response = server.post(Q, json={"name": "work", "job_schema": schema}, headers=headers("admin"))
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert server.get(f"{Q}/work").status_code == 404


def test_a_queue_schemas_pattern_runs_in_linear_time(server: LiveServer) -> None:
    make_queue(server, job_schema={"properties": {"x": {"type": "string", "pattern": "^(a+)+$"}}})
    started = time.monotonic()
    assert submit(server, {"payload": {"x": "a" * 26 + "!"}}).status_code == 400
    assert time.monotonic() - started < 1.0  # Python's re: seconds


# -- claiming ----------------------------------------------------------------------------------------------------
def test_claim_takes_only_the_queues_jobs(server: LiveServer) -> None:
    make_queue(server, "a", claim_timeout=120)
    make_queue(server, "b")
    submit(server, {"payload": {"q": "b"}}, "b")
    server.post("/create-job", json={"data": {"plain": True}}, headers=headers("producer"))
    submit(server, {"jobs": [{"payload": {"q": "a", "i": i}} for i in range(3)]}, "a")
    jobs = claim(server, "a", count=5)
    assert [j["payload"]["i"] for j in jobs] == [0, 1, 2]
    first = jobs[0]
    assert first["id"] == f"{first['job_id']}.1"
    assert first["attempt"] == 1 and first["status"] == "processing" and first["queue"] == "a"
    assert first["lease_expires_at"] is not None
    lease = server.queue.get(first["job_id"]).lease_expires_at
    assert lease is not None
    remaining = (lease - server.queue.store.now()).total_seconds()
    assert 100 < remaining <= 120
    assert claim(server, "a") == []
    assert claim(server, "nope" if False else "b")[0]["payload"] == {"q": "b"}


def test_claim_of_an_unknown_queue_is_404(server: LiveServer) -> None:
    response = server.post(f"{Q}/ghost/jobs/claim", json={"count": 1}, headers=headers("worker"))
    assert response.status_code == 404


def test_priority_orders_claims(server: LiveServer) -> None:
    make_queue(server)
    submit(server, {"jobs": [{"payload": {"p": 4}, "priority": 4}, {"payload": {"p": 0}, "priority": 0}]})
    assert [j["payload"]["p"] for j in claim(server, count=2)] == [0, 4]


def test_an_empty_long_poll_waits_block_ms(server: LiveServer) -> None:
    make_queue(server)
    started = time.monotonic()
    assert claim(server, block_ms=400) == []
    assert 0.35 <= time.monotonic() - started < 2.0


def test_block_ms_is_capped_by_the_server(make_server: Any) -> None:
    live = make_server(max_block_ms=200)
    make_queue(live)
    started = time.monotonic()
    assert claim(live, block_ms=60_000) == []
    assert time.monotonic() - started < 1.5


def _claim_in_background(server: LiveServer, block_ms: int) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        out["jobs"] = claim(server, block_ms=block_ms)
        out["at"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)  # the claim is waiting now
    return thread, out


def test_a_waiting_claim_returns_as_soon_as_a_job_is_submitted(make_server: Any) -> None:
    server = make_server(claim_poll_interval=60.0)  # only the arrival can wake the claim
    make_queue(server)
    thread, out = _claim_in_background(server, block_ms=15_000)
    submitted = time.monotonic()
    submit(server, {"payload": {"wake": 1}})
    thread.join(timeout=10)
    assert [j["payload"] for j in out["jobs"]] == [{"wake": 1}]
    assert out["at"] - submitted < 3.0  # woken, not polled (60 s) nor timed out (15 s)


def test_a_waiting_claim_wakes_for_jobs_enqueued_through_the_queue_object(make_server: Any) -> None:
    server = make_server(claim_poll_interval=60.0)  # only the arrival can wake the claim
    make_queue(server)
    thread, out = _claim_in_background(server, block_ms=15_000)
    enqueued = time.monotonic()
    server.queue.enqueue({"direct": 1}, queue="work")
    thread.join(timeout=10)
    assert [j["payload"] for j in out["jobs"]] == [{"direct": 1}]
    assert out["at"] - enqueued < 3.0  # woken, not polled (60 s) nor timed out (15 s)


def test_many_waiting_claims_do_not_starve_the_server(server: LiveServer) -> None:
    make_queue(server)
    waiters = 80  # more than the threadpool's 40 threads
    with ThreadPoolExecutor(waiters) as pool:
        futures = [pool.submit(claim, server, "work", 1, 3000) for _ in range(waiters)]
        time.sleep(0.7)
        started = time.monotonic()
        assert server.get("/health").status_code == 200
        assert server.post("/create-job", json={"data": {}}, headers=headers("producer")).status_code == 201
        assert time.monotonic() - started < 2.5  # the 3 s long-polls do not hold it up
        submit(server, {"payload": {"only": 1}})
        results = [f.result(timeout=20) for f in futures]
    winners = [jobs for jobs in results if jobs]
    assert len(winners) == 1 and winners[0][0]["payload"] == {"only": 1}


# -- finishing ---------------------------------------------------------------------------------------------------
def test_complete_records_the_result(server: LiveServer) -> None:
    make_queue(server)
    submit(server, {"payload": {"n": 1}})
    (job,) = claim(server)
    response = finish(server, job["id"], "complete", {"result": {"processed": True}})
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    stored = server.queue.get(job["job_id"])
    assert stored.state is JobState.COMPLETED and stored.result == {"processed": True}
    assert finish(server, job["id"], "complete", {"result": {}}).status_code == 409


def test_a_result_too_large_is_413_and_the_job_stays_in_hand(server: LiveServer) -> None:
    # Issue 8, item 7: the job used to read completed with its result gone.
    make_queue(server)
    submit(server, {"payload": {"n": 1}})
    (job,) = claim(server)
    response = finish(server, job["id"], "complete", {"result": {"blob": "x" * 70_000}})
    assert response.status_code == 413
    assert "the job was not changed" in response.json()["detail"]
    stored = server.queue.get(job["job_id"])
    assert stored.state is JobState.PROCESSING and stored.result is None
    assert server.queue.comments(job["job_id"]) == []
    failed = finish(server, job["id"], "fail", {"error": "result too large", "retry": False})
    assert failed.status_code == 200 and failed.json()["status"] == "failed"


def test_a_failed_job_comes_back_after_its_backoff_not_the_claim_timeout(server: LiveServer) -> None:
    make_queue(server, max_retries=1, claim_timeout=300)
    submit(server, {"payload": {"flaky": True}})
    (job,) = claim(server)
    response = finish(server, job["id"], "fail", {"error": "try again"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "pending" and body["attempts_left"] == 1 and body["retry_at"] is not None
    failed_at = time.monotonic()
    assert claim(server) == []  # still backing off (0.3 s)
    (again,) = claim(server, block_ms=3000)
    assert 0.2 < time.monotonic() - failed_at < 2.0
    assert again["job_id"] == job["job_id"] and again["attempt"] == 2 and again["error"] == "try again"
    last = finish(server, again["id"], "fail", {"error": "still broken"})
    assert last.json()["status"] == "failed"
    assert server.queue.get(job["job_id"]).state is JobState.FAILED


def test_fail_without_retry_is_final(server: LiveServer) -> None:
    make_queue(server, max_retries=3)
    submit(server, {"payload": {}})
    (job,) = claim(server)
    assert finish(server, job["id"], "fail", {"error": "bad input", "retry": False}).json()["status"] == "failed"


def test_a_stale_worker_gets_409(server: LiveServer) -> None:
    make_queue(server, claim_timeout=1, max_retries=1)
    submit(server, {"payload": {"slow": True}})
    (first,) = claim(server)
    (second,) = claim(server, block_ms=5000)  # the lease expired and was recovered
    assert second["job_id"] == first["job_id"] and second["attempt"] == first["attempt"] + 1
    stale = finish(server, first["id"], "complete", {"result": {"late": True}})
    assert stale.status_code == 409
    assert "no longer holds" in stale.json()["detail"]
    assert finish(server, first["id"], "fail", {"error": "late"}).status_code == 409
    assert finish(server, second["id"], "complete", {"result": {"on": "time"}}).status_code == 200
    assert server.queue.get(first["job_id"]).result == {"on": "time"}
    assert 'octoqueue_stale_results_total{queue="work"} 2.0' in server.get("/metrics").text


def test_the_attempt_can_be_given_in_the_body(server: LiveServer) -> None:
    make_queue(server)
    submit(server, {"jobs": [{"payload": {}}, {"payload": {}}]})
    a, b = claim(server, count=2)
    assert finish(server, str(a["job_id"]), "complete", {"result": {}}).status_code == 400
    assert finish(server, a["id"], "complete", {"result": {}, "attempt": 7}).status_code == 400
    assert finish(server, str(a["job_id"]), "complete", {"result": {}, "attempt": 1}).status_code == 200
    assert finish(server, str(b["job_id"]), "complete", {"attempt": 2}).status_code == 409


def test_jobs_of_another_queue_are_404(server: LiveServer) -> None:
    make_queue(server, "a")
    make_queue(server, "b")
    submit(server, {"payload": {}}, "a")
    (job,) = claim(server, "a")
    assert finish(server, job["id"], "complete", {}, name="b").status_code == 404
    assert finish(server, "999.1", "complete", {}, name="a").status_code == 404


def test_heartbeat_extends_the_lease(server: LiveServer) -> None:
    make_queue(server, claim_timeout=2)
    submit(server, {"payload": {}})
    (job,) = claim(server)
    for _ in range(3):
        time.sleep(0.8)
        response = finish(server, job["id"], "heartbeat", {})
        assert response.status_code == 200
        assert response.json()["status"] == "processing"
    assert finish(server, job["id"], "complete", {}).status_code == 200


# -- listing -----------------------------------------------------------------------------------------------------
def test_listing_pages_with_a_cursor(server: LiveServer) -> None:
    make_queue(server)
    submit(server, {"jobs": [{"payload": {"i": i}} for i in range(5)]})
    claim(server)
    seen: list[int] = []
    cursor = ""
    pages = 0
    while True:
        page = server.get(f"{Q}/work/jobs", params={"count": 2, "cursor": cursor}).json()
        seen.extend(j["payload"]["i"] for j in page["jobs"])
        pages += 1
        if not page["has_more"]:
            assert page["cursor"] == ""
            break
        cursor = page["cursor"]
    assert seen == [0, 1, 2, 3, 4] and pages == 3
    claimed = server.get(f"{Q}/work/jobs", params={"status": "claimed"}).json()["jobs"]
    assert [j["payload"]["i"] for j in claimed] == [0]
    pending = server.get(f"{Q}/work/jobs", params={"status": "pending"}).json()["jobs"]
    assert len(pending) == 4


def test_a_forged_cursor_is_400(server: LiveServer) -> None:
    make_queue(server)
    submit(server, {"jobs": [{"payload": {}} for _ in range(3)]})
    real = server.get(f"{Q}/work/jobs", params={"count": 1}).json()["cursor"]
    body, _, _mac = real.rpartition(".")
    for forged in ["MQ.0123456789abcdef0123456789abcdef", body + "." + "0" * 32, "aHR0cDovL2V2aWw"]:
        response = server.get(f"{Q}/work/jobs", params={"cursor": forged})
        assert response.status_code == 400, forged
    assert server.get(f"{Q}/work/jobs", params={"cursor": real}).status_code == 200


# -- authorisation -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("post", Q, {"name": "x"}, {"admin"}),
        ("delete", f"{Q}/work", None, {"admin"}),
        ("post", f"{Q}/work/jobs", {"payload": {}}, {"producer", "admin"}),
        ("post", f"{Q}/work/jobs/claim", {"count": 1}, {"worker", "admin"}),
        ("put", f"{Q}/work/jobs/1.1/complete", {}, {"worker", "admin"}),
        ("put", f"{Q}/work/jobs/1.1/fail", {}, {"worker", "admin"}),
    ],
)
def test_roles(server: LiveServer, method: str, path: str, body: Any, allowed: set[str]) -> None:
    for role in ["producer", "worker", "reader"]:
        if role in allowed:
            continue
        response = getattr(server, method)(path, json=body, headers=headers(role))
        assert response.status_code == 403, (role, response.text)
    assert getattr(server, method)(path, json=body).status_code == 401
    assert getattr(server, method)(path, json=body, headers={"X-API-Key": "nope"}).status_code == 401


def test_reads_are_open_by_default_and_keyed_on_request(make_server: Any) -> None:
    open_server = make_server()
    make_queue(open_server)
    assert open_server.get(Q).status_code == 200
    assert open_server.get(f"{Q}/work/jobs").status_code == 200
    assert open_server.get(Q, headers={"X-API-Key": "wrong"}).status_code == 401
    keyed = make_server(open_reads=False)
    make_queue(keyed)
    assert keyed.get(Q).status_code == 401
    assert keyed.get(f"{Q}/work/jobs").status_code == 401
    for role in ["reader", "worker", "producer", "admin"]:
        assert keyed.get(f"{Q}/work/jobs", headers=headers(role)).status_code == 200


def test_an_encrypted_dedupe_queue_keeps_no_guessable_digest_of_the_payload(make_server: Any) -> None:
    """B4b: the dedupe key was sha256(payload) in clear beside the sealed data: a guessed payload could be
    confirmed. On an encrypted queue it is keyed by the queue's key; dedupe still works."""
    import hashlib

    from octoqueue.queue import Queue
    from octoqueue.sealing import new_key

    queue = Queue("memory://", encryption_keys=new_key())
    server: LiveServer = make_server(queue=queue)
    make_queue(server, "dq", dedupe=True)
    first = submit(server, {"payload": {"card": "4111"}}, "dq").json()
    assert submit(server, {"payload": {"card": "4111"}}, "dq").json()["skipped"] == 1
    stored = queue.store.inner.get(first["jobs"][0]["job_id"])  # type: ignore[attr-defined]
    guess = "starq:dq:" + hashlib.sha256(b'{"card":"4111"}').hexdigest()
    assert stored.idempotency_key is not None and stored.idempotency_key.startswith("starq:dq:")
    assert stored.idempotency_key != guess


def test_the_server_warns_at_startup_when_encrypted_data_is_open_to_read(
    make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """B4c: an encrypted queue behind open reads hands out decrypted data to anyone; say so at startup."""
    from octoqueue.queue import Queue
    from octoqueue.sealing import new_key

    make_server(queue=Queue("memory://", encryption_keys=new_key()), open_reads=False)
    assert "reads are open" not in caplog.text
    make_server(queue=Queue("memory://", encryption_keys=new_key()), api_keys=None)
    assert "job data is encrypted (OCTOQUEUE_ENCRYPTION_KEY) but reads are open" in caplog.text

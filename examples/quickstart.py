"""The quick start as a script: jobs into the embedded SQLite store, a worker runs them, results come back.

python examples/quickstart.py            # uses ./octoqueue.db (or $OCTOQUEUE_STORE)
"""

from __future__ import annotations

import octoqueue
from octoqueue.worker import Worker


def word_count(data: dict[str, str]) -> dict[str, int]:
    return {"words": len(data["text"].split())}


def main() -> None:
    queue = octoqueue.connect()  # $OCTOQUEUE_STORE, else sqlite:///octoqueue.db: no GitHub token needed
    texts = ["jobs are issues", "states are labels", "workers swap labels to claim jobs atomically"]
    ids = [queue.enqueue({"text": text}, title=f"count words #{n}") for n, text in enumerate(texts, 1)]
    print(f"enqueued jobs {ids} on {queue.store.url}")
    Worker(queue, word_count, concurrency=2, poll_interval=0.05).run(once=True)
    for job_id in ids:
        job = queue.get(job_id)
        print(f"job {job.id}: {job.status:<10} {job.data} -> {job.result}")
    queue.close()


if __name__ == "__main__":
    main()

"""The baseline of benchmarks/queue_core.py: plain Celery, one task per transaction, a no-op task.

Started as ``celery -A benchmarks.baseline_app worker -P prefork -c 2``; each done id is appended to a
file per worker process so the benchmark can count them exactly.
"""

from __future__ import annotations

import os

from celery import Celery

QUEUE = "bench.baseline"
app = Celery("baseline", broker=os.environ.get("BENCH_BROKER", "amqp://guest:guest@127.0.0.1:5672//"))
# Plain Celery with the same publish guarantees as ours: persistent messages, publisher confirms.
app.conf.update(task_acks_late=True, task_default_queue=QUEUE, worker_prefetch_multiplier=1, task_ignore_result=True,
                task_serializer="json", accept_content=["json"], worker_hijack_root_logger=False,
                task_default_delivery_mode="persistent", broker_transport_options={"confirm_publish": True})
_out = None


@app.task(name="bench.noop")
def noop(tx_id: int) -> None:
    global _out
    if _out is None:
        _out = open(os.path.join(os.environ["BENCH_OUT"], f"done-{os.getpid()}.txt"), "a", buffering=1)
    _out.write(f"{tx_id}\n")

"""The Python side of the Celery tests' tasks: the same names as tests/support/celery_tasks.hpp,
for a real `celery worker` (our producer's tasks) and for the Python producers (our worker's).
The broker and result backend: $AKV_CELERY_BROKER."""
import os
import time

from celery import Celery

broker = os.environ.get("AKV_CELERY_BROKER", "redis://127.0.0.1:6379/0")
app = Celery("celery_tasks", broker=broker, backend=broker)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    broker_transport_options={
        "visibility_timeout": float(os.environ.get("AKV_CELERY_VISIBILITY", "3600"))
    },
    worker_hijack_root_logger=False,
)


@app.task(name="tests.add")
def add(x, y):
    return x + y


@app.task(name="tests.fail")
def fail(msg):
    raise ValueError(msg)


@app.task(name="tests.sleep")
def sleep(ms):
    time.sleep(ms / 1000)
    return ms


@app.task(name="tests.retry", bind=True, max_retries=5)
def retry(self, times):
    if self.request.retries < times:
        raise self.retry(countdown=0.01)
    return self.request.retries


@app.task(name="tests.noop")
def noop():
    return None

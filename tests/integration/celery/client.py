"""Python Celery, the real library, as the producer in front of our worker
(tests/integration/celery_test.cpp). Usage: client.py SCENARIO [ARG...], the broker in
$AKV_CELERY_BROKER. Exits 0 once every check of the scenario held; 1 (saying which) otherwise.
"""
import base64
import datetime
import json
import sys
import threading
import time
import uuid

import celery.exceptions
import kombu.exceptions
import redis

from celery_tasks import app, add, fail, retry, sleep

TIMEOUT = 20


def check(cond, what):
    if not cond:
        print("FAILED:", what, flush=True)
        sys.exit(1)


def raises(result, exc_type, text=None):
    try:
        value = result.get(timeout=TIMEOUT)
    except exc_type as e:
        check(text is None or text in str(e), f"{exc_type.__name__} says {text!r}: {e}")
        return e
    check(False, f"expected {exc_type.__name__}, got {value!r}")


def scenario_add():
    check(add.delay(2, 3).get(timeout=10) == 5, "add.delay(2, 3).get() == 5")
    results = [add.delay(i, i) for i in range(50)]
    check([r.get(timeout=TIMEOUT) for r in results] == [2 * i for i in range(50)], "50 adds")


def scenario_fail():
    e = raises(fail.delay("boom"), ValueError, "boom")
    check(type(e) is ValueError, f"the exception is a ValueError: {type(e)}")
    r = fail.delay("again")
    raises(r, ValueError, "again")
    check(r.state == "FAILURE", f"state FAILURE: {r.state}")


def scenario_options():
    # countdown: not before its time
    start = time.time()
    check(add.apply_async((1, 2), countdown=1).get(timeout=TIMEOUT) == 3, "countdown result")
    check(time.time() - start >= 0.9, f"ran after its countdown ({time.time() - start:.2f}s)")
    # expires: a task past it is revoked, not run
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    raises(add.apply_async((1, 1), expires=past), celery.exceptions.TaskRevokedError, "expired")
    # time_limit: cancelled, TimeLimitExceeded
    raises(sleep.apply_async((5000,), time_limit=0.3), celery.exceptions.TimeLimitExceeded)
    # retries: the handler asks twice, the third run returns
    check(retry.delay(2).get(timeout=TIMEOUT) == 2, "retried twice, then 2")
    # past max_retries (5): MaxRetriesExceededError
    raises(retry.delay(9), celery.exceptions.MaxRetriesExceededError)
    # revoke before it runs (held for its countdown meanwhile)
    r = add.apply_async((4, 4), countdown=2)
    time.sleep(0.3)  # the worker holds it now; the revoke reaches it over pub/sub
    app.control.revoke(r.id)
    raises(r, celery.exceptions.TaskRevokedError)
    # revoke(terminate=True) of a running task: cancelled where it waits
    r = sleep.delay(10000)
    client = redis.Redis.from_url(app.conf.broker_url)
    deadline = time.time() + TIMEOUT
    while not client.hget("akvtest:celery:starts", r.id) and time.time() < deadline:
        time.sleep(0.01)
    app.control.revoke(r.id, terminate=True)
    raises(r, celery.exceptions.TaskRevokedError, "terminated")
    check(client.hget("akvtest:celery:ends", r.id) is None, "the terminated task did not end")


def scenario_priority_send():
    # Sent before any worker runs: 9 (taken last) first, then 0 (taken first).
    low = [add.apply_async((i, 0), priority=9).id for i in range(5)]
    high = [add.apply_async((i, 0), priority=0).id for i in range(5)]
    print(" ".join(low + high), flush=True)


def scenario_priority_check():
    ids = sys.argv[2:]
    low, high = ids[:5], ids[5:]
    done = {i: app.AsyncResult(i) for i in ids}
    for r in done.values():
        r.get(timeout=TIMEOUT)
    last_high = max(done[i].date_done for i in high)
    first_low = min(done[i].date_done for i in low)
    check(last_high <= first_low, f"priority 0 done by {last_high}, 9 from {first_low}")


def scenario_bad():
    # an unknown task: NotRegistered for its caller, dead-lettered
    r = app.send_task("tests.no_such_task", args=(1,))
    raises(r, celery.exceptions.NotRegistered, "tests.no_such_task")
    # a pickled body
    r = add.apply_async((2, 2), serializer="pickle")
    raises(r, kombu.exceptions.ContentDisallowed)
    # a body that is not JSON, and an envelope that is not one at all
    client = redis.Redis.from_url(app.conf.broker_url)
    task_id = str(uuid.uuid4())
    envelope = {
        "body": base64.b64encode(b"[[1, 2], {}, {").decode(),
        "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": "tests.add", "id": task_id, "retries": 0,
                    "eta": None, "expires": None, "timelimit": [None, None]},
        "properties": {"correlation_id": task_id, "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": "celery"},
                       "priority": 0, "body_encoding": "base64",
                       "delivery_tag": str(uuid.uuid4())},
    }
    client.lpush("celery", json.dumps(envelope))
    raises(app.AsyncResult(task_id), kombu.exceptions.DecodeError, "not JSON")
    client.lpush("celery", "this is not a message")
    # the worker goes on
    check(add.delay(20, 22).get(timeout=TIMEOUT) == 42, "a good task after the bad ones")


def scenario_events():
    # What Flower does: a Receiver on the event fanout feeding celery.events.state.State.
    state = app.events.State()
    sent = []
    seen = threading.Event()

    def on_event(event):
        state.event(event)
        task = state.tasks.get(sent[-1]) if sent else None
        if task is not None and task.state == "SUCCESS" and state.alive_workers():
            seen.set()
            receiver.should_stop = True

    with app.connection() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": on_event})
        thread = threading.Thread(target=receiver.capture,
                                  kwargs={"limit": None, "timeout": None, "wakeup": False},
                                  daemon=True)
        thread.start()
        # Tasks until one is seen through: the first may run before the receiver subscribed.
        deadline = time.time() + TIMEOUT
        while not seen.is_set() and time.time() < deadline:
            result = add.delay(1, 2)
            sent.append(result.id)
            check(result.get(timeout=TIMEOUT) == 3, "add through the events")
            seen.wait(0.5)
    check(seen.is_set(), "a task-succeeded event and a live worker")
    task = state.tasks[sent[-1]]
    check(task.name == "tests.add" and task.worker.hostname == sys.argv[2],
          f"task {task.name} on {task.worker.hostname}")
    check(task.received is not None and task.started is not None, "received and started")


def scenario_send():
    print(sleep.delay(int(sys.argv[2])).id, flush=True)


def scenario_wait():
    value = app.AsyncResult(sys.argv[2]).get(timeout=float(sys.argv[3]))
    check(value == int(sys.argv[4]), f"result {value!r}")


def scenario_fill():
    # Bench: N no-op tasks on the queue, sent as fast as Celery sends them.
    n = int(sys.argv[2])
    start = time.time()
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            app.send_task("tests.noop", producer=producer)
    print(f"{n / (time.time() - start):.0f}", flush=True)


if __name__ == "__main__":
    globals()["scenario_" + sys.argv[1]]()
    print("ok", flush=True)

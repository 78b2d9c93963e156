"""A program for akv-worker --celery-task tests.add=...: {"args": [x, y], "kwargs": {}} on stdin,
x + y on stdout as JSON; a failure (exit status 3) for anything else."""
import json
import sys

task = json.load(sys.stdin)
args = task["args"] or [task["kwargs"].get("x"), task["kwargs"].get("y")]
if len(args) != 2 or not all(isinstance(a, int) for a in args):
    print("add_program: expected two integers", file=sys.stderr)
    sys.exit(3)
print(json.dumps(args[0] + args[1]))

"""rq's quick start: jobs, a dependent job and a scheduled one, worked by a burst worker (ops/app-check)."""

import datetime
import json
import sys

import redis
from rq import Queue, Worker
from tasks import add

r = redis.Redis(port=int(sys.argv[1]))
r.flushall()
q = Queue(connection=r)
jobs = [q.enqueue(add, i, i) for i in range(20)]
dependent = q.enqueue(add, 1, 2, depends_on=jobs[0])
scheduled = q.enqueue_in(datetime.timedelta(seconds=0), add, 5, 5)
Worker([q], connection=r).work(burst=True, with_scheduler=True)
print(
    json.dumps(
        {
            "results": [job.return_value() for job in jobs],
            "dependent": [str(dependent.get_status()), dependent.return_value()],
            "failed": len(q.failed_job_registry),
            "finished": len(q.finished_job_registry),
        }
    )
)

"""Run the inbound-processing jobs that a webhook queued (store first, then process), and nothing else.

Why: ``/twilio/sms`` only stores the text; ``app.tasks.process_inbound`` routes it and queues the replies.
The webhook kicks ``app.tasks.process_pending_inbound`` (batches); a batch hands texts it may not take
to ``app.tasks.process_inbound`` jobs (one text each). Tests that post a text and then look at what it
did (an answer saved, an escalation opened, a reply queued but not yet sent) drain those jobs the way a
worker would, leaving the send jobs queued for ``run_jobs``.
"""

from __future__ import annotations

from rq import Queue

from app.jobs import QUEUE_NAME, RqQueue, resolve
from app.messaging.inbound import PROCESS_JOB, PROCESS_PENDING_JOB
from app.runtime import Runtime


def drain_inbound(rt: Runtime) -> int:
    """Run every queued ``process_pending_inbound`` and ``process_inbound`` job in queue order, including
    those they queue (the sender's next text), and remove them from the queue; returns how many ran. Other
    jobs stay queued."""
    if not isinstance(rt.jobs, RqQueue):
        return 0  # in-process: they ran at once
    queue = Queue(QUEUE_NAME, connection=rt.jobs.connection)
    ran = 0
    while True:
        jobs = [job for job in queue.get_jobs() if job.func_name in (PROCESS_JOB, PROCESS_PENDING_JOB)]
        if not jobs:
            return ran
        for job in jobs:
            queue.remove(job)
            resolve(job.func_name)(*job.args)
            job.delete()
            ran += 1

"""Stopping the appliance while a scheduled job schedules a follow-up does not hang.

APScheduler's `shutdown(wait=True)` holds its job-store lock while it waits for running
jobs; a job calling `add_job` then waited for ever (seen once in CI: a callback
confirmation scheduling its STK Query as the test's appliance stopped).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from support.appliance import running_appliance


def test_a_job_that_schedules_more_work_during_shutdown_does_not_hang(tmp_path: Path) -> None:
    followed: list[str] = []
    running = threading.Event()
    with running_appliance(tmp_path) as appliance:

        def job() -> None:
            running.set()
            time.sleep(0.5)  # still running when the shutdown starts
            appliance._run_later(0.0, lambda: followed.append("ran"))

        appliance._run_later(0.0, job)
        assert running.wait(10)
        stopper = threading.Thread(target=appliance.stop, daemon=True)
        stopper.start()
        stopper.join(30)
        assert not stopper.is_alive(), "Appliance.stop hung on the scheduler"
    assert followed == []  # dropped: the reconciler resumes such work at the next start

"""The bounded chaos run of `make test`: a few seeded jobs with faults at every kind's rate, doubled.

`make chaos` runs 100 jobs; this keeps a regression in the recovery paths visible in CI. The faults
land at random points (threads interleave), so the assertions are the guarantees, not fault positions.
"""

from __future__ import annotations

from batch_gateway_local.chaos.runner import ChaosOptions, run_chaos


def test_a_few_jobs_under_random_faults_lose_nothing_and_pay_nothing_twice() -> None:
    report = run_chaos(ChaosOptions(jobs=4, seed=7, scale=2.0, concurrency=4, scenarios=("ok",), grace_s=300))

    assert report.jobs_ended == 4, report.text()
    assert sum(report.faults.values()) > 0, "the run injected no fault: it tested nothing"
    assert (report.lines_lost, report.duplicate_lines) == (0, 0), report.text()
    assert (report.batches_paid_twice, report.orphan_batches) == (0, 0), report.text()
    assert report.result_lines_out == report.lines_in
    assert report.ok, report.text()

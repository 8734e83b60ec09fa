"""The paced scheduler against a fake clock: the schedule, not wall time."""

from __future__ import annotations

from sippa.media.engine import LatenessHistogram, Scheduler


class Job:
    def __init__(self) -> None:
        self.closed = False
        self.ticks: list[tuple[float, float]] = []
        self.skipped = 0

    def tick(self, deadline: float, now: float) -> None:
        self.ticks.append((deadline, now))

    def skip(self, frames: int) -> None:
        self.skipped += frames


class Boom(Job):
    def tick(self, deadline: float, now: float) -> None:
        super().tick(deadline, now)
        raise RuntimeError("a broken stream")


def test_deadlines_stay_on_a_fixed_grid_whatever_the_wakeup_jitter() -> None:
    s = Scheduler(early_slack=0.001)
    job = Job()
    first = s.add(job, 0.02, now=100.0, phase=0.0)
    assert first == 100.0
    # wake up with varying lateness (and early wake-ups that find nothing due)
    jitter = [0.0, 0.0017, -0.0013, 0.0004, 0.0019, -0.0003, 0.0011] * 1500
    now = 100.0
    for i, j in enumerate(jitter):
        now = 100.0 + i * 0.02 + j
        s.due(now)
    deadlines = [d for d, _ in job.ticks]
    # every frame ran exactly once, in order, on the grid start + n * ptime: no drift after
    # 10 500 frames (210 s) although every wake-up was off by up to +-2 ms
    assert len(deadlines) >= len(jitter) - 1
    assert job.skipped == 0
    for n, d in enumerate(deadlines):
        assert abs(d - (100.0 + n * 0.02)) < 1e-6
    # nothing ran more than the early slack before its deadline
    assert all(now_ >= d - 0.001 - 1e-12 for d, now_ in job.ticks)


def test_early_wakeup_runs_nothing_and_due_runs_everything_due() -> None:
    s = Scheduler(early_slack=0.0005)
    a, b = Job(), Job()
    s.add(a, 0.02, now=0.0, phase=0.5)  # due at 0.010
    s.add(b, 0.02, now=0.0, phase=0.25)  # due at 0.005
    assert s.next_deadline() == 0.005
    assert s.due(0.004) == 0  # too early (more than the slack)
    assert s.due(0.0046) == 1  # within the slack: b runs
    assert b.ticks == [(0.005, 0.0046)]
    assert s.due(0.0101) == 1
    assert a.ticks == [(0.010, 0.0101)]
    assert s.next_deadline() == 0.025


def test_phases_spread_jobs_over_the_period() -> None:
    s = Scheduler()
    jobs = [Job() for _ in range(600)]
    firsts = sorted(s.add(j, 0.02, now=0.0) - 0.0 for j in jobs)
    # golden-ratio phases: every 1 ms slot of the 20 ms frame gets about 30 jobs
    counts = [0] * 20
    for f in firsts:
        counts[min(int(f / 0.001), 19)] += 1
    assert min(counts) >= 25
    assert max(counts) <= 35


def test_a_stalled_loop_skips_instead_of_bursting() -> None:
    s = Scheduler(max_catch_up=5)
    job = Job()
    s.add(job, 0.02, now=0.0, phase=0.0)
    s.due(0.0)
    s.due(0.5)  # the loop stalled for half a second
    assert job.skipped == 24
    assert len(job.ticks) == 2
    assert job.ticks[-1][0] == 0.0 + 25 * 0.02 - 0.0 or abs(job.ticks[-1][0] - 0.5) < 1e-9
    s.due(0.52)
    assert abs(job.ticks[-1][0] - 0.52) < 1e-9


def test_small_lateness_is_caught_up_not_skipped() -> None:
    s = Scheduler(max_catch_up=5)
    job = Job()
    s.add(job, 0.02, now=0.0, phase=0.0)
    s.due(0.061)  # three frames late: all sent, in order
    assert [round(d, 3) for d, _ in job.ticks] == [0.0, 0.02, 0.04, 0.06]
    assert job.skipped == 0


def test_closed_jobs_leave_and_failing_jobs_do_not_stop_others() -> None:
    s = Scheduler()
    ok, bad, gone = Job(), Boom(), Job()
    for j in (ok, bad, gone):
        s.add(j, 0.02, now=0.0, phase=0.0)
    gone.closed = True
    assert s.due(0.0) == 2
    assert len(s) == 2
    s.due(0.02)
    assert len(ok.ticks) == 2
    assert len(bad.ticks) == 2
    assert gone.ticks == []


def test_lateness_histogram() -> None:
    h = LatenessHistogram()
    for i in range(100):
        h.add(i / 100_000)  # 0 .. 0.99 ms
    h.add(-0.0007)
    assert h.count == 101
    assert h.early == 1
    assert abs(h.max_early - 0.0007) < 1e-12
    assert 0.0009 <= h.percentile(99) <= 0.001
    assert h.percentile(50) <= 0.0005
    h.add(1.0)  # beyond the last bucket
    assert h.percentile(100) == 0.1
    h.reset()
    assert h.count == 0
    assert h.percentile(99) == 0.0


def test_an_overloaded_tick_yields_after_its_budget() -> None:
    s = Scheduler()
    jobs = [Job() for _ in range(100)]
    for j in jobs:
        s.add(j, 0.02, now=0.0, phase=0.0)
    t = [0.0]

    def clock() -> float:  # every job costs 1 ms of fake time
        t[0] += 0.001
        return t[0]

    ran = s.due(0.0, clock, budget=0.005)
    assert ran < 100  # returned early so the loop can run the receive path
    assert ran + s.due(t[0], clock, budget=1.0) >= 100
    assert all(len(j.ticks) >= 1 for j in jobs)

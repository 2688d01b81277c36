"""The runner with plain-Python evaluate callables: what it tells the scheduler, and when."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState

from tests.scheduling.conftest import TinyStudy
from tuner.errors import PermanentTrialError
from tuner.scheduling import ClaimedTrial, TrialRecorder, TrialRunner
from tuner.study import schema


def test_runner_covers_the_grid_exactly_once(tiny: TinyStudy) -> None:
    seen: list[int] = []

    def evaluate(claim: ClaimedTrial, recorder: TrialRecorder) -> float:
        seen.append(claim.grid_id)
        recorder.set_user_attrs(**{schema.UNITS: list(claim.units)})
        return claim.units[0] / 100

    report = TrialRunner(tiny.scheduler(), evaluate, claim_size=2, poll_seconds=0.1).run()
    assert report.evaluated == 3 and sorted(seen) == [0, 1, 2]
    trials = tiny.study.get_trials()
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.value for t in trials} == {0.08, 0.16, 0.32}
    assert all(t.user_attrs[schema.UNITS] == [t.params["l1"], 8] for t in trials)
    # A second runner on a finished grid evaluates nothing.
    assert TrialRunner(tiny.scheduler(), evaluate).run().evaluated == 0


def test_a_point_that_raises_fails_alone_and_is_retried(tiny: TinyStudy) -> None:
    calls: dict[int, int] = {}

    def evaluate(claim: ClaimedTrial, recorder: TrialRecorder) -> float:
        calls[claim.grid_id] = calls.get(claim.grid_id, 0) + 1
        if claim.grid_id == 1 and calls[1] == 1:
            raise OSError("disk full")
        return 0.5

    report = TrialRunner(tiny.scheduler(), evaluate, claim_size=3, poll_seconds=0.1).run()
    assert report.evaluated == 3 and calls == {0: 1, 1: 2, 2: 1}
    failed = tiny.study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 1
    assert failed[0].system_attrs[schema.FAIL_REASON] == "OSError: disk full"
    assert failed[0].system_attrs[schema.RETRYABLE] is True


def test_a_permanent_failure_is_not_retried(tiny: TinyStudy) -> None:
    def evaluate(claim: ClaimedTrial, recorder: TrialRecorder) -> float:
        if claim.grid_id == 0:
            raise PermanentTrialError("training loss became non-finite on fold 0")
        return 0.5

    scheduler = tiny.scheduler()
    report = TrialRunner(scheduler, evaluate, poll_seconds=0.1).run()
    assert report.evaluated == 2
    assert report.state is not None and report.state.given_up(3) == [0]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, "SIGTERM"])
def test_an_interrupt_gives_back_every_held_point(tiny: TinyStudy, interrupt: object) -> None:
    from tuner.errors import WorkerInterrupted

    raised = KeyboardInterrupt() if interrupt is KeyboardInterrupt else WorkerInterrupted(15)

    def evaluate(claim: ClaimedTrial, recorder: TrialRecorder) -> float:
        if claim.grid_id == 1:
            raise raised
        return 0.5

    with pytest.raises(type(raised)):
        TrialRunner(tiny.scheduler(), evaluate, claim_size=3).run()
    trials = {t.system_attrs[schema.GRID_ID]: t for t in tiny.study.get_trials()}
    assert trials[0].state == TrialState.COMPLETE
    for grid_id in (1, 2):
        assert trials[grid_id].state == TrialState.FAIL
        assert trials[grid_id].system_attrs[schema.INTERRUPTED] is True
    # Given back, not charged: a later runner finishes both.
    report = TrialRunner(tiny.scheduler(), lambda c, r: 0.5, claim_size=3).run()
    assert report.evaluated == 2
    assert report.state is not None and report.state.complete == {0, 1, 2}


def test_points_trained_together_are_told_one_by_one(tiny: TinyStudy) -> None:
    batches: list[list[int]] = []

    def together(claims: list[ClaimedTrial], recorders: list[TrialRecorder]) -> list:
        batches.append([c.grid_id for c in claims])
        outcomes: list[float | Exception] = []
        for claim, recorder in zip(claims, recorders, strict=True):
            recorder.set_user_attrs(**{schema.UNITS: list(claim.units)})
            if claim.grid_id == 1:
                outcomes.append(PermanentTrialError("training loss became non-finite"))
            else:
                outcomes.append(claim.units[0] / 100)
        return outcomes

    def alone(claim: ClaimedTrial, recorder: TrialRecorder) -> float:
        raise AssertionError("a batch of several points must be evaluated together")

    report = TrialRunner(tiny.scheduler(), alone, evaluate_batch=together, claim_size=8).run()
    assert batches == [[0, 1, 2]]
    assert report.evaluated == 2
    trials = {t.system_attrs[schema.GRID_ID]: t for t in tiny.study.get_trials()}
    assert trials[0].state == trials[2].state == TrialState.COMPLETE
    assert trials[1].state == TrialState.FAIL  # failed alone, the others were told
    assert trials[1].system_attrs[schema.RETRYABLE] is False


def test_an_interrupt_during_a_batch_gives_back_every_point(tiny: TinyStudy) -> None:
    def together(claims: list[ClaimedTrial], recorders: list[TrialRecorder]) -> list:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        TrialRunner(tiny.scheduler(), lambda c, r: 0.5, evaluate_batch=together, claim_size=3).run()
    trials = tiny.study.get_trials()
    assert len(trials) == 3
    assert all(t.state == TrialState.FAIL and t.system_attrs[schema.INTERRUPTED] for t in trials)


def test_a_stop_whose_exception_was_lost_is_honoured_at_the_next_trial(
    tiny: TinyStudy,
) -> None:
    # SIGTERM raised inside a weakref callback is dropped by Python; the runner must still
    # stop at the next trial boundary, with the finished trial kept and nothing more run.
    import signal

    seen: list[int] = []

    def evaluate(claim: ClaimedTrial, recorder: TrialRecorder) -> float:
        seen.append(claim.grid_id)
        if claim.grid_id == 0:
            from tuner.scheduling import _signals

            _signals._requested.append(signal.SIGTERM)  # as the handler records it
        return 0.5

    from tuner.errors import WorkerInterrupted

    with pytest.raises(WorkerInterrupted):
        TrialRunner(tiny.scheduler(), evaluate, claim_size=1).run()
    assert seen == [0]
    trials = tiny.study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE]


def test_an_error_raised_after_a_stop_request_counts_as_the_interruption(
    tiny: TinyStudy,
) -> None:
    import signal

    from tuner.errors import WorkerInterrupted
    from tuner.scheduling import _signals

    def evaluate(claim: ClaimedTrial, recorder: TrialRecorder) -> float:
        _signals._requested.append(signal.SIGTERM)
        raise SystemError("bad argument to internal function")  # what native code made of it

    with pytest.raises(WorkerInterrupted):
        TrialRunner(tiny.scheduler(), evaluate, claim_size=2).run()
    trials = tiny.study.get_trials()
    assert all(t.state == TrialState.FAIL and t.system_attrs[schema.INTERRUPTED] for t in trials)
    assert not any(t.system_attrs.get(schema.RETRYABLE) is False for t in trials)


def test_a_sigint_turned_into_another_error_still_interrupts(tiny: TinyStudy) -> None:
    # Seen in CI: SIGINT landing while TensorFlow traced a graph came out as a SystemError,
    # and the point was retried as failed instead of the worker stopping.
    import signal

    def evaluate(claim: ClaimedTrial, recorder: TrialRecorder) -> float:
        try:
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, to the runner's handler
        except KeyboardInterrupt:
            raise SystemError("bad argument to internal function") from None
        return 0.5

    with pytest.raises(KeyboardInterrupt):
        TrialRunner(tiny.scheduler(), evaluate, claim_size=1).run()
    trials = tiny.study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL]
    assert trials[0].system_attrs[schema.INTERRUPTED] is True

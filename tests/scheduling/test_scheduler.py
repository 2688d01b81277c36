"""The grid scheduler through its public methods, on a real SQLite storage (no training)."""

from __future__ import annotations

import datetime
import time

import optuna
import pytest
from optuna.trial import TrialState

from tests.scheduling.conftest import TinyStudy
from tuner.errors import TunerError
from tuner.study import schema


def by_id(tiny: TinyStudy) -> dict[int, optuna.trial.FrozenTrial]:
    return {
        t._trial_id: t
        for t in tiny.storage.get_all_trials(tiny.storage.get_study_id_from_name("tiny"))
    }


def test_claims_take_the_lowest_waiting_points_with_their_parameters(tiny: TinyStudy) -> None:
    scheduler = tiny.scheduler()
    claims, state = scheduler.claim(2)
    assert [c.grid_id for c in claims] == [0, 1]
    assert state.running == {0, 1}
    sampler = tiny.study.sampler
    for claim in claims:
        trial = tiny.storage.get_trial(claim.trial_id)
        assert trial.state == TrialState.RUNNING
        assert trial.system_attrs[schema.GRID_ID] == claim.grid_id
        assert trial.params == claim.params
        assert claim.units == (claim.params["l1"], claim.params["l2"])
        assert claim.label == f"l1={claim.params['l1']} l2=8"
        # The same mapping GridSampler itself applies to a grid id.
        expected = sampler.sample_independent(tiny.study, trial, "l1", trial.distributions["l1"])
        assert claim.params["l1"] == expected
    # Another worker gets what is left, and nothing once the grid is held.
    other = tiny.scheduler()
    more, _ = other.claim(5)
    assert [c.grid_id for c in more] == [2]
    none, state = other.claim(1)
    assert none == [] and state.running == {0, 1, 2}
    assert sorted({c.params["l1"] for c in [*claims, *more]}) == [8, 16, 32]


def test_complete_marks_the_trial_and_the_grid_finishes(tiny: TinyStudy) -> None:
    scheduler = tiny.scheduler()
    claims, _ = scheduler.claim(3)
    recorders = scheduler.recorders(claims)
    for claim, recorder in zip(claims, recorders, strict=True):
        recorder.set_user_attrs(**{schema.ACCURACY_STD: 0.01})
        recorder.record_epoch(1, 0.5)
        recorder.flush_curve()
        assert scheduler.complete(claim, 0.25 + claim.grid_id / 10)
    trials = tiny.study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert trials[0].user_attrs[schema.ACCURACY_STD] == 0.01
    assert trials[0].intermediate_values == {1: 0.5}
    state = scheduler.grid_state()
    assert state.complete == {0, 1, 2} and not state.running
    assert scheduler.claim(1)[0] == []


def test_stale_trials_are_reaped_with_a_reason_and_reclaimed(tiny: TinyStudy) -> None:
    dead = tiny.scheduler()
    (orphan,), _ = dead.claim(1)
    # Its worker "dies": no more heartbeats; the grace period is 2 s.
    time.sleep(3.5)
    live = tiny.scheduler()
    claims, _ = live.claim(1)
    assert [c.grid_id for c in claims] == [orphan.grid_id]
    reaped = by_id(tiny)[orphan.trial_id]
    assert reaped.state == TrialState.FAIL
    assert reaped.system_attrs[schema.FAIL_REASON] == "stale heartbeat"


def test_heartbeat_keeps_held_trials_alive(tiny: TinyStudy) -> None:
    scheduler = tiny.scheduler()
    claims, _ = scheduler.claim(2)
    with scheduler.heartbeat(claims):
        time.sleep(3.5)
        assert tiny.scheduler().reap_stale() == []
    assert all(by_id(tiny)[c.trial_id].state == TrialState.RUNNING for c in claims)


def test_a_new_attempt_is_handed_the_folds_an_interrupted_one_finished(tiny: TinyStudy) -> None:
    scheduler = tiny.scheduler()
    (first,), _ = scheduler.claim(1)
    fold_zero = {
        "fold": 0,
        "accuracy": 0.5,
        "loss": 1.0,
        "seconds": 1.0,
        "history": {key: [0.5] for key in schema.HISTORY_KEYS},
    }
    scheduler.recorders([first])[0].set_user_attrs(**{schema.fold_key(0): fold_zero})
    scheduler.release([first], "interrupted by SIGINT")
    failed = by_id(tiny)[first.trial_id]
    assert failed.state == TrialState.FAIL and failed.system_attrs[schema.INTERRUPTED] is True
    (second,), state = tiny.scheduler().claim(1)
    assert second.grid_id == first.grid_id
    assert second.reused_folds[0].to_dict() == fold_zero
    assert state.failures[first.grid_id] == 0  # an interruption is not charged


def test_points_that_keep_failing_are_given_up_and_named(tiny: TinyStudy) -> None:
    scheduler = tiny.scheduler(max_attempts=2)
    for _ in range(2):
        (claim,), _ = scheduler.claim(1)
        assert claim.grid_id == 0
        scheduler.fail(claim, "OSError: disk full", retryable=True)
    claims, state = scheduler.claim(3)
    assert [c.grid_id for c in claims] == [1, 2]
    assert state.given_up(2) == [0]
    with pytest.raises(TunerError) as error:
        scheduler.ensure_complete(state)
    assert "2 attempts, last: OSError: disk full" in str(error.value)
    assert "l1=" in str(error.value)


def test_a_permanent_failure_is_given_up_at_once(tiny: TinyStudy) -> None:
    scheduler = tiny.scheduler()
    (claim,), _ = scheduler.claim(1)
    scheduler.fail(claim, "training loss became non-finite", retryable=False)
    assert scheduler.grid_state().given_up(3) == [claim.grid_id]


def test_a_result_reaped_while_training_is_salvaged_when_nobody_took_the_point(
    tiny: TinyStudy,
) -> None:
    scheduler = tiny.scheduler()
    (claim,), _ = scheduler.claim(1)
    scheduler.recorders([claim])[0].set_user_attrs(**{schema.FOLD_ACCURACIES: [0.7, 0.7, 0.7]})
    time.sleep(3.5)  # a long pause: the heartbeat stops, the grace period passes
    assert tiny.scheduler().reap_stale() == [claim.trial_id]
    assert scheduler.complete(claim, 0.7)
    complete = tiny.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 1
    assert complete[0].system_attrs[schema.GRID_ID] == claim.grid_id
    assert complete[0].params == claim.params
    assert complete[0].user_attrs[schema.FOLD_ACCURACIES] == [0.7, 0.7, 0.7]


def test_a_result_reaped_while_training_is_dropped_when_the_point_was_retaken(
    tiny: TinyStudy,
) -> None:
    scheduler = tiny.scheduler()
    (claim,), _ = scheduler.claim(1)
    time.sleep(3.5)
    (retaken,), _ = tiny.scheduler().claim(1)
    assert retaken.grid_id == claim.grid_id
    assert not scheduler.complete(claim, 0.7)
    assert tiny.study.get_trials(states=(TrialState.COMPLETE,)) == []


def test_claim_count_must_be_positive(tiny: TinyStudy) -> None:
    with pytest.raises(ValueError, match="positive"):
        tiny.scheduler().claim(0)


def test_a_running_trial_that_never_beat_is_reaped_after_the_grace_period(
    tiny: TinyStudy,
) -> None:
    # A claim whose first heartbeat write failed: RUNNING, no heartbeat, long started.
    from tuner.study import running_trial_template

    template = running_trial_template(tiny.study, tiny.config.definition, grid_id=0)
    template.datetime_start = datetime.datetime.now() - datetime.timedelta(minutes=5)
    study_id = tiny.storage.get_study_id_from_name("tiny")
    orphan = tiny.storage.create_new_trial(study_id, template_trial=template)
    recent = tiny.storage.create_new_trial(
        study_id, template_trial=running_trial_template(tiny.study, tiny.config.definition, 1)
    )
    assert tiny.scheduler().reap_stale() == [orphan]  # the fresh one may still beat
    assert by_id(tiny)[orphan].system_attrs[schema.FAIL_REASON] == schema.STALE_REASON
    assert by_id(tiny)[recent].state == TrialState.RUNNING


def test_writes_refused_after_reaping_are_kept_and_salvaged(tiny: TinyStudy) -> None:
    scheduler = tiny.scheduler()
    (claim,), _ = scheduler.claim(1)
    (recorder,) = scheduler.recorders([claim])
    recorder.set_user_attrs(**{schema.fold_key(0): {"accuracy": 0.6}})
    time.sleep(3.5)  # the worker froze past the grace period
    assert tiny.scheduler().reap_stale() == [claim.trial_id]
    # Training went on: these writes are refused by the storage but must not be lost.
    recorder.set_user_attrs(**{schema.FOLD_ACCURACIES: [0.6, 0.7, 0.8]})
    recorder.record_epoch(2, 0.7)
    recorder.flush_curve()
    assert recorder.reaped
    assert scheduler.complete(claim, 0.7, recorder)
    (kept,) = tiny.study.get_trials(states=(TrialState.COMPLETE,))
    assert kept.user_attrs[schema.fold_key(0)] == {"accuracy": 0.6}
    assert kept.user_attrs[schema.FOLD_ACCURACIES] == [0.6, 0.7, 0.8]
    assert kept.intermediate_values == {2: 0.7}  # the curve, refused then salvaged
    assert kept.system_attrs[schema.GRID_ID] == claim.grid_id


def test_lost_workers_have_their_own_attempt_budget(tiny: TinyStudy) -> None:
    scheduler = tiny.scheduler(max_attempts=1, max_stale_attempts=2)
    for attempt in range(2):
        (claim,), _ = scheduler.claim(1)
        assert claim.grid_id == 0, attempt
        time.sleep(3.5)  # its worker vanished
        assert tiny.scheduler().reap_stale() == [claim.trial_id]
    # Two lost workers did not use up the one attempt allowed for errors...
    state = scheduler.grid_state()
    assert state.failures[0] == 0 and state.stale[0] == 2
    # ...but two is this study's budget for lost workers.
    assert state.given_up(1) == [0]


def test_a_claim_takes_a_fair_share_when_other_workers_are_alive(tiny: TinyStudy) -> None:
    first, second = tiny.scheduler(), tiny.scheduler()
    second.worker_id = "other-host/1"
    second.announce()
    claims, _ = first.claim(8)
    # Three points waiting, two live workers: at most two for this one.
    assert len(claims) == 2
    assert first.live_workers() == 2
    second.retire()
    assert first.live_workers() == 1
    rest, _ = first.claim(8)
    assert len(rest) == 1


def test_expected_workers_cap_a_claim_before_the_others_announce(tiny: TinyStudy) -> None:
    first = tiny.scheduler(expected_workers=3)
    claims, _ = first.claim(8)
    # Three points waiting, nobody else announced yet, three workers expected: one.
    assert len(claims) == 1
    assert first.live_workers() == 1
    with pytest.raises(ValueError, match="expected workers must be positive"):
        tiny.scheduler(expected_workers=0)


def test_an_interrupt_during_a_batch_claim_gives_back_what_it_created(
    tiny: TinyStudy, monkeypatch: pytest.MonkeyPatch
) -> None:
    beats = []
    record_heartbeat = tiny.storage.record_heartbeat

    def interrupted_at_the_second(trial_id: int) -> None:
        # SIGINT landing between two trials of one claim (the handler raises there).
        beats.append(trial_id)
        if len(beats) == 2:
            raise KeyboardInterrupt
        record_heartbeat(trial_id)

    monkeypatch.setattr(tiny.storage, "record_heartbeat", interrupted_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        tiny.scheduler().claim(3)
    monkeypatch.undo()
    created = list(by_id(tiny).values())
    assert len(created) == 2
    assert all(t.state == TrialState.FAIL for t in created)
    assert all(t.system_attrs[schema.INTERRUPTED] is True for t in created)
    # Given back uncharged: the next claim takes the same points again.
    again, state = tiny.scheduler().claim(3)
    assert sorted(c.grid_id for c in again) == [0, 1, 2]
    assert not state.failures and not state.stale

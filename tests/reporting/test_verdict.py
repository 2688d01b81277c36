import pytest

from tuner.reporting import judge


def test_rising_validation_loss_over_fits() -> None:
    train = [0.50, 0.30, 0.20, 0.12, 0.08, 0.05]
    val = [0.45, 0.30, 0.25, 0.27, 0.30, 0.33]
    verdict = judge(train, val)
    assert verdict.word == "over-fits"
    assert verdict.best_epoch == 3
    assert "rose 32% above its minimum at epoch 3" in verdict.reason
    assert verdict.gap == pytest.approx(0.28)


def test_train_loss_far_below_validation_over_fits() -> None:
    # The original study's 2layer-no-dropout final fit: 0.0062 train vs 0.0698 test loss.
    verdict = judge([0.2, 0.05, 0.0062], [0.10, 0.072, 0.0698])
    assert verdict.word == "over-fits"
    assert "11.3x the training loss" in verdict.reason


def test_close_curves_fit_well() -> None:
    # The original 2layer (BN + Dropout): 0.0535 train vs 0.0576 test loss, settled.
    verdict = judge([0.30, 0.10, 0.0535], [0.12, 0.0580, 0.0576])
    assert verdict.word == "fits well"
    assert verdict.best_epoch == 3


def test_a_validation_loss_still_falling_at_the_end_is_still_improving() -> None:
    # Both losses falling steeply at the last of 2 epochs (the short quick-start run).
    verdict = judge([0.95, 0.62], [0.70, 0.55])
    assert verdict.word == "still improving"
    assert "still falling at the last epoch (21.4% in it, lowest there)" in verdict.reason
    assert judge([0.8], [0.6]).word == "still improving"  # one epoch proves nothing
    # Falling by 1% or less at the end has settled; a rise is judged by the other rules.
    assert judge([0.3, 0.2, 0.2], [0.25, 0.2, 0.199]).word == "fits well"
    assert judge([0.3, 0.2, 0.2], [0.25, 0.2, 0.21]).word == "fits well"


def test_the_rule_is_stated_in_words() -> None:
    from tuner.reporting._verdict import RULE, WORDS

    assert all(word in RULE for word in WORDS) and "train longer" in RULE


def test_heavily_regularised_net_under_fits() -> None:
    # The original 5layer: 0.5305 train vs 0.1057 test loss (Dropout starves it).
    verdict = judge([0.9, 0.6, 0.5305], [0.2, 0.12, 0.1057])
    assert verdict.word == "under-fits"


def test_curves_must_match() -> None:
    with pytest.raises(ValueError):
        judge([0.1], [0.1, 0.2])
    with pytest.raises(ValueError):
        judge([], [])


def test_one_fit_is_judged_exactly_as_before() -> None:
    from tuner.reporting import judge_runs

    train, val = [0.50, 0.30, 0.20, 0.12, 0.08, 0.05], [0.45, 0.30, 0.25, 0.27, 0.30, 0.33]
    assert judge_runs([(train, val)]) == judge(train, val)


def test_several_fits_are_judged_on_their_mean_curves_and_say_how_many_agree() -> None:
    from tuner.reporting import judge_runs

    train = [0.50, 0.30, 0.20]
    rising = [0.40, 0.30, 0.36]  # alone: rose 20% above its minimum -> over-fits
    flat = [0.40, 0.30, 0.31]  # alone: fits well (3% above)
    flatter = [0.40, 0.30, 0.30]
    verdict = judge_runs([(train, rising), (train, flat), (train, flatter)])
    # Mean validation curve 0.40, 0.30, 0.3233: 7.8% above its minimum -> fits well.
    assert verdict.word == "fits well"
    assert (verdict.fits, verdict.agreeing) == (3, 2)
    assert verdict.reason.endswith(
        "(mean curves of 3 fits; judged alone, 2 of 3 fits well, 1 over-fits)"
    )
    assert verdict.gap == pytest.approx((0.36 + 0.31 + 0.30) / 3 - 0.20)
    two_rising = judge_runs([(train, rising), (train, rising), (train, flat)])
    assert two_rising.word == "over-fits" and two_rising.agreeing == 2
    assert "rose 14% above its minimum at epoch 2" in two_rising.reason


def test_fits_of_different_lengths_are_refused() -> None:
    from tuner.reporting import judge_runs

    with pytest.raises(ValueError):
        judge_runs([([0.1, 0.2], [0.1, 0.2]), ([0.1], [0.1])])
    with pytest.raises(ValueError):
        judge_runs([])

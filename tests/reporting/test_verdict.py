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
    # The original 2layer (BN + Dropout): 0.0535 train vs 0.0576 test loss.
    verdict = judge([0.30, 0.10, 0.0535], [0.12, 0.07, 0.0576])
    assert verdict.word == "fits well"
    assert verdict.best_epoch == 3


def test_heavily_regularised_net_under_fits() -> None:
    # The original 5layer: 0.5305 train vs 0.1057 test loss (Dropout starves it).
    verdict = judge([0.9, 0.6, 0.5305], [0.2, 0.12, 0.1057])
    assert verdict.word == "under-fits"


def test_curves_must_match() -> None:
    with pytest.raises(ValueError):
        judge([0.1], [0.1, 0.2])
    with pytest.raises(ValueError):
        judge([], [])

"""The over-fitting verdict, derived from recorded loss curves by one documented rule.

The original study wrote its verdicts by hand; here they follow from the numbers.
With ``train`` and ``val`` the last epoch's training and validation loss, ``best``
the lowest validation loss of any epoch:

* **over-fits** when validation loss rose more than ``RISE`` (10 %) above its minimum
  by the last epoch, or ends more than ``RATIO`` (2x) above the training loss;
* **under-fits** when the training loss ends more than ``RATIO`` (2x) above the
  validation loss: measured with Dropout active, it says the regularisation keeps the
  network from fitting the training data it sees;
* **still improving** when the validation loss is lowest at the last epoch and fell by
  more than ``STILL_FALLING`` (1 %) in that epoch, or when there is a single epoch
  (nothing shows it has converged): the model is under-trained, and more epochs would
  change the answer;
* **fits well** otherwise.

With several final fits of one winner (``--final-seeds S``), :func:`judge_runs` applies
the rule to the seeds' mean curves (epoch by epoch, the mean training and the mean
validation loss), so one seed's noise does not decide it, and says how many of the
fits, judged alone, agree.
"""

from __future__ import annotations

from dataclasses import dataclass

RISE = 0.10
RATIO = 2.0
STILL_FALLING = 0.01
WORDS = ("over-fits", "under-fits", "still improving", "fits well")
"""Every verdict, in the order the rule tries them."""
RULE = (
    f"over-fits: validation loss rose more than {RISE:.0%} above its minimum, or ends more "
    f"than {RATIO:g}x the training loss; under-fits: training loss (Dropout active) ends more "
    f"than {RATIO:g}x the validation loss; still improving: validation loss lowest at the last "
    f"epoch and still falling more than {STILL_FALLING:.0%} in that epoch (or a single epoch): "
    "train longer; fits well: otherwise"
)
"""The rule in words, as the report states it."""


@dataclass(frozen=True)
class Verdict:
    """A verdict and what it rests on.

    Attributes:
        word: ``over-fits``, ``under-fits`` or ``fits well``.
        reason: Why, in words derived from the curves.
        best_epoch: The epoch of the lowest validation loss (from 1).
        gap: Last validation loss minus last training loss.
        fits: How many final fits it was judged on (their mean curves).
        agreeing: How many of those fits, judged alone, get the same word.
    """

    word: str
    """One of :data:`WORDS`."""
    reason: str
    best_epoch: int
    gap: float
    fits: int = 1
    agreeing: int = 1


def judge(train_loss: list[float], val_loss: list[float]) -> Verdict:
    """Apply the rule above to per-epoch curves (at least one epoch)."""
    if not train_loss or len(train_loss) != len(val_loss):
        raise ValueError("need equally long, non-empty train and validation loss curves")
    train, val = train_loss[-1], val_loss[-1]
    best = min(val_loss)
    best_epoch = val_loss.index(best) + 1
    gap = val - train
    rise = (val - best) / best if best > 0 else 0.0
    if rise > RISE:
        return Verdict(
            "over-fits",
            f"validation loss rose {rise:.0%} above its minimum at epoch {best_epoch}",
            best_epoch,
            gap,
        )
    if train > 0 and val / train > RATIO:
        return Verdict(
            "over-fits", f"validation loss is {val / train:.1f}x the training loss", best_epoch, gap
        )
    if val > 0 and train / val > RATIO:
        return Verdict(
            "under-fits",
            f"training loss is {train / val:.1f}x the validation loss",
            best_epoch,
            gap,
        )
    falling = _falling(val_loss)
    if falling is not None:
        return Verdict("still improving", falling, best_epoch, gap)
    return Verdict(
        "fits well", "validation loss close to training loss, not rising", best_epoch, gap
    )


def _falling(val_loss: list[float]) -> str | None:
    """Why the validation loss is still falling at the end, or None when it has settled."""
    if len(val_loss) == 1:
        return "one epoch: nothing shows the model has converged; train more epochs"
    if min(val_loss) != val_loss[-1]:
        return None
    before, last = val_loss[-2], val_loss[-1]
    if before <= 0:
        return None
    fall = 1 - last / before
    if fall <= STILL_FALLING:
        return None
    return (
        f"validation loss still falling at the last epoch ({fall:.1%} in it, lowest there): "
        "train more epochs"
    )


def judge_runs(runs: list[tuple[list[float], list[float]]]) -> Verdict:
    """The verdict on several fits of one model: the rule on their mean curves.

    Args:
        runs: Each fit's (training loss, validation loss) per epoch, all as long.

    Returns:
        The verdict of the mean curves, with how many fits agree alone (its reason says
        so when there is more than one fit). One fit is judged exactly as :func:`judge`.
    """
    if not runs:
        raise ValueError("need at least one fit to judge")
    if len(runs) == 1:
        return judge(*runs[0])
    if len({len(train) for train, _ in runs} | {len(val) for _, val in runs}) != 1:
        raise ValueError("every fit's curves must have the same number of epochs")
    train = [sum(values) / len(runs) for values in zip(*(t for t, _ in runs), strict=True)]
    val = [sum(values) / len(runs) for values in zip(*(v for _, v in runs), strict=True)]
    mean = judge(train, val)
    alone = [judge(t, v).word for t, v in runs]
    agreeing = alone.count(mean.word)
    others = sorted({word for word in alone if word != mean.word})
    split = "".join(f", {alone.count(word)} {word}" for word in others)
    reason = (
        f"{mean.reason} (mean curves of {len(runs)} fits; judged alone, "
        f"{agreeing} of {len(runs)} {mean.word}{split})"
    )
    return Verdict(mean.word, reason, mean.best_epoch, mean.gap, len(runs), agreeing)

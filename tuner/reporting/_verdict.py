"""The over-fitting verdict, derived from recorded loss curves by one documented rule.

The original study wrote its verdicts by hand; here they follow from the numbers.
With ``train`` and ``val`` the last epoch's training and validation loss, ``best``
the lowest validation loss of any epoch:

* **over-fits** when validation loss rose more than ``RISE`` (10 %) above its minimum
  by the last epoch, or ends more than ``RATIO`` (2x) above the training loss;
* **under-fits** when the training loss ends more than ``RATIO`` (2x) above the
  validation loss: measured with Dropout active, it says the regularisation keeps the
  network from fitting the training data it sees;
* **fits well** otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

RISE = 0.10
RATIO = 2.0


@dataclass(frozen=True)
class Verdict:
    word: str
    reason: str
    best_epoch: int
    gap: float


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
    return Verdict(
        "fits well", "validation loss close to training loss, not rising", best_epoch, gap
    )

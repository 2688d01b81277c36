import io

from rich.console import Console

from tuner.progress import ProgressDisplay, format_units


def plain_display() -> tuple[ProgressDisplay, io.StringIO]:
    buffer = io.StringIO()
    return ProgressDisplay(Console(file=buffer, force_terminal=False, width=200)), buffer


def test_not_a_terminal_prints_one_line_per_trial() -> None:
    display, buffer = plain_display()
    assert not display.live
    with display:
        display.study_started("2layer", grid_size=9, done=2, folds=3, epochs=4)
        display.trial_started(5, "l1=512 l2=64")
        display.fold_started(1, 3, 4)
        for epoch in range(1, 5):
            display.epoch_ended(epoch, {"val_accuracy": 0.9})
        display.trial_finished(5, "l1=512 l2=64", "CV accuracy 0.9000", completed=True)
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "2layer: 2/9 grid points already complete",
        "trial 5 [l1=512 l2=64]: CV accuracy 0.9000",
    ]
    assert display.done == 3


def test_study_eta_counts_packed_epochs_for_every_fold() -> None:
    display, _ = plain_display()
    display.live = True  # count progress as a terminal would, without drawing it
    display.study_started("s", grid_size=2, done=0, folds=3, epochs=2)
    display.trial_started(0, "l1=8")
    display.fold_started(1, 3, 2, packed=3)
    display.epoch_ended(1, {})
    task = display._progress.tasks[0]
    assert task.total == 12 and task.completed == 3  # one packed epoch = 3 fold-epochs


def test_format_units() -> None:
    assert format_units(["l1", "l2"], (512, 64)) == "l1=512 l2=64"


def test_a_workers_bar_shows_the_studys_total_and_its_own_share() -> None:
    display, _ = plain_display()
    display.live = True
    display.study_started("s", grid_size=36, done=0, folds=3, epochs=2)
    display.trial_started(0, "l1=8")
    display.trial_finished(0, "l1=8", "CV accuracy 0.5", completed=True)
    display.study_complete(19)  # other workers finished 18 meanwhile
    task = display._progress.tasks[0]
    assert task.fields["detail"] == "19/36 points (1 by this worker)"
    assert task.completed == 19 * 3 * 2
    display.study_complete(5)  # an older count never moves the bar back
    assert display._progress.tasks[0].completed == 19 * 3 * 2

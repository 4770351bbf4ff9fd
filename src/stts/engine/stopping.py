"""When a run has learned what it can: the ``until-plateau`` schedule, and the time budget every schedule honours.

``--lr-schedule until-plateau`` trains at ``--lr`` until the smoothed val loss stops improving, then
lowers the learning rate linearly to zero over a cool-down of a quarter of the epochs so far (at
least 2) and stops: a schedule defined for a run whose length is not known in advance (the
"warm-up, stable, decay" shape, without the warm-up). ``--epochs`` is the maximum: the cool-down
starts early enough to end on it. ``--time-budget SECONDS`` starts the cool-down when only its
length is left, measured in epochs of the last one's duration, and counts the seconds of every
epoch across resumes.

Why a smoothed loss, and the train guard: a val split of 30-60 videos moves its loss by several per cent from one
epoch to the next by chance (a plateau rule on the raw value swung test top-1 by points before). The rule reads
the mean val loss of the last ``SMOOTHING`` epochs (an exponential average lagged a plateau by 5 epochs and more
on a steadily falling loss) and calls a plateau only when that has not improved by ``MIN_DELTA`` for
``--patience`` epochs *and* the train top-1 (its trend over the last 2 x patience + 1 epochs) has gained under
``TRAIN_GAIN`` points over the same epochs *and* the train or the val top-1 (mean of ``SMOOTHING`` epochs) has
reached ``LEARNED_TOP1``: a run that still learns its training set is not stopped by a noisy val split. The last
guard is for slow learners: motion-body, gaining half a point of train top-1 an epoch, was cooled down at epoch 23
at 59.5 % train and 47.9 % val top-1 (means of 3) when one outlying val loss sat in three means, and went on
learning to 75.9 % in the cool-down alone; with the guard it learned on to 80.2 % test top-1 in 40 epochs. Of the
motion suite's 17 until-plateau runs the guard changed only that decision and one other (docs/motion-suite.md).
Val counts as well as train because random crops can make the training clips the harder ones (a small set's train
top-1 hovered at 60-90 % while its val was learned). A run that reaches neither ends at ``--epochs`` or ``--time-
budget``. best.pt is chosen on the same smoothed val loss (``smoothed_val_loss``), not on one epoch's val top-1:
on 60 val videos one lucky epoch reached 100 % early and kept a checkpoint 5 points worse on test than the run's
end (docs/training.md, "Which epoch is best.pt").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

SMOOTHING = 3  # the val loss read is the mean of the last 3 epochs
MIN_DELTA = 0.01  # a better smoothed val loss is one at least 1 % below the best so far
TRAIN_GAIN = 2.0  # points of train top-1 over the patience window that mean the run still learns
LEARNED_TOP1 = 90.0  # train and val top-1 (means of SMOOTHING epochs) both below this: still learning, however slowly
MIN_VAL_VIDEOS = 20  # fewer val videos than this: no plateau rule, the run takes every --epochs
COOLDOWN_SHARE = 0.25  # the cool-down lasts a quarter of the epochs trained before it ...
MIN_COOLDOWN = 2  # ... and at least this many


@dataclass
class Stopping:
    """The state of the stopping rule and the cool-down; saved in every checkpoint (``state_dict``)."""

    max_epochs: int
    patience: int = 3
    plateau_rule: bool = True  # False: the val split is too small; only --epochs and --time-budget end the run
    decay_from: int | None = None  # the epoch after which the cool-down began
    decay_epochs: int = 0
    val_loss: list[float] = field(default_factory=list)
    best: float = math.inf
    since_best: int = 0
    train_top1: list[float] = field(default_factory=list)
    val_top1: list[float] = field(default_factory=list)
    reason: str = ""
    cause: str = ""  # what began the cool-down: "plateau", "epochs" or "budget"
    epoch_seconds: float = 0.0  # the last epoch's, for a resumed run's budget

    def factor(self, done: int) -> float:
        """The learning rate's factor for the epoch after ``done`` completed ones: 1 until the cool-down, then
        C/(C+1), ..., 1/(C+1) over its C epochs, 0 after."""
        if self.decay_from is None:
            return 1.0
        into = done - self.decay_from
        return max(0.0, (self.decay_epochs - into) / (self.decay_epochs + 1))

    def finished(self, epoch: int) -> bool:
        """Whether the run ends after ``epoch``."""
        if epoch >= self.max_epochs:
            return True
        return self.decay_from is not None and epoch >= self.decay_from + self.decay_epochs

    def observe(self, epoch: int, val_loss: float, train_top1: float, val_top1: float) -> None:
        """After ``epoch``: update the smoothed val loss and start the cool-down on a plateau or near --epochs."""
        self.val_loss.append(val_loss)
        self.train_top1.append(train_top1)
        self.val_top1.append(val_top1)
        smoothed = smoothed_val_loss(self.val_loss)
        if smoothed < self.best * (1 - MIN_DELTA):
            self.best, self.since_best = smoothed, 0
        else:
            self.since_best += 1
        if self.decay_from is not None:
            return
        cooldown = max(MIN_COOLDOWN, round(COOLDOWN_SHARE * epoch))
        left = self.max_epochs - epoch
        if left <= cooldown:
            self.begin(epoch, left, f"--epochs {self.max_epochs} is near", "epochs")
            return
        gain = smoothed_gain(self.train_top1, self.patience)
        train, val = recent_mean(self.train_top1), recent_mean(self.val_top1)
        learned = max(train, val) >= LEARNED_TOP1
        if self.plateau_rule and self.since_best >= self.patience and gain < TRAIN_GAIN and learned:
            self.begin(epoch, cooldown, f"the val loss (mean of {SMOOTHING} epochs) has not improved by "
                                        f"{MIN_DELTA:.0%} for {self.since_best} epochs and train top-1 gained "
                                        f"{gain:.1f} points (top-1, mean of {SMOOTHING} epochs: train {train:.1f} %, "
                                        f"val {val:.1f} %)", "plateau")

    def budget(self, epoch: int, seconds_left: float, epoch_seconds: float) -> None:
        """After ``epoch``: with ``seconds_left`` of the time budget and epochs of ``epoch_seconds``, start (or
        shorten) the cool-down so that the run ends within the budget."""
        self.epoch_seconds = epoch_seconds
        fit = max(0, int(seconds_left // max(epoch_seconds, 1e-9)))
        if self.decay_from is None:
            cooldown = max(MIN_COOLDOWN, round(COOLDOWN_SHARE * epoch))
            if fit <= cooldown:
                self.begin(epoch, fit, f"--time-budget leaves {max(seconds_left, 0):.0f} s, {fit} epoch(s)", "budget")
        elif self.decay_from + self.decay_epochs > epoch + fit:
            self.decay_epochs = max(epoch + fit - self.decay_from, epoch - self.decay_from)
            self.reason += f"; cut short by --time-budget ({seconds_left:.0f} s left)"

    def begin(self, epoch: int, epochs: int, reason: str, cause: str) -> None:
        self.decay_from, self.decay_epochs, self.reason, self.cause = epoch, epochs, reason, cause

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a saved rule under this (possibly larger) --epochs: a cool-down that --epochs or the time budget
        began is taken back (a resume may give more of either; the budget is measured again), one a plateau
        began is kept."""
        for key, value in state.items():
            if key != "max_epochs":
                setattr(self, key, value)
        if self.cause in ("epochs", "budget") and (self.cause == "budget" or self.max_epochs > state["max_epochs"]):
            self.decay_from, self.decay_epochs, self.reason, self.cause = None, 0, "", ""


def recent_mean(values: list[float]) -> float:
    """The mean of the last ``SMOOTHING`` values (0 for none)."""
    recent = values[-SMOOTHING:]
    return sum(recent) / len(recent) if recent else 0.0


def smoothed_val_loss(val_losses: list[float]) -> float:
    """The val loss as the plateau rule and the choice of best.pt read it: the mean of the last ``SMOOTHING`` epochs'
    (fewer at the start); infinity when the last is NaN (a diverged epoch), and an earlier NaN left out of the mean."""
    if not val_losses or math.isnan(val_losses[-1]):
        return math.inf
    return recent_mean([value for value in val_losses[-SMOOTHING:] if not math.isnan(value)])


def best_epoch(val_losses: list[float]) -> int:
    """Which of the epochs with these val losses (1 = the first) best.pt keeps: the lowest ``smoothed_val_loss``, the
    earliest of equal ones."""
    scores = [smoothed_val_loss(val_losses[:end]) for end in range(1, len(val_losses) + 1)]
    return 1 + scores.index(min(scores))


def smoothed_gain(values: list[float], patience: int) -> float:
    """How much ``values`` rose over the last ``patience`` epochs, read from their least-squares trend over the last
    2 x patience + 1 epochs (inf while there are fewer than patience + 1): one epoch's train top-1 moves by several
    points on its own (motion-body's went 41, 47, 40, 48 % on a rising trend), so one epoch against another says
    little."""
    if len(values) < patience + 1:
        return math.inf
    recent = values[-(2 * patience + 1):]
    n = len(recent)
    mean_x, mean_y = (n - 1) / 2, sum(recent) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(recent)) / sum((x - mean_x) ** 2 for x in range(n))
    return slope * patience


def describe(stopping: Stopping, val_videos: int, time_budget: float | None) -> str:
    """The start line's account of how the run will end."""
    budget = f", or when --time-budget {time_budget:.0f} s is spent" if time_budget else ""
    if not stopping.plateau_rule:
        return (f"the val split has {val_videos} videos, too few for the stopping rule (at least {MIN_VAL_VIDEOS}): "
                f"training runs all {stopping.max_epochs} epochs{budget}")
    return (f"stops when learned: a cool-down of a quarter of the epochs so far (at least {MIN_COOLDOWN}) once the "
            f"val loss (mean of {SMOOTHING} epochs) has not improved by {MIN_DELTA:.0%} for {stopping.patience} epochs "
            f"while train top-1 gains under {TRAIN_GAIN:.0f} points and train or val top-1 is at least "
            f"{LEARNED_TOP1:.0f} %; at most {stopping.max_epochs} epochs{budget}")

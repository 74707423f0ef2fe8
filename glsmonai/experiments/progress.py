"""How far a comparison's training has come, and about how long what is left will take."""

from __future__ import annotations

import logging

__all__ = ["TrainingClock"]

logger = logging.getLogger(__name__)


class TrainingClock:
    """Counts a comparison's trainings and logs each one's start and the time left.

    The estimate counts only the trainings run by this call (those found trained earlier took no time
    now): the trainings left times the mean of those, an upper bound when some of what is left is found
    trained too.

    Args:
        total: how many trainings the comparison holds (models x rounds x seeds).
        n_rounds: the rounds, for the log lines.
    """

    def __init__(self, total: int, n_rounds: int):
        self.total, self.n_rounds, self.done = total, n_rounds, 0
        self.seconds: list[float] = []  # of the trainings run by this call

    def start(self, model: str, k: int, log: object, seed: int | None = None) -> None:
        """Log that ``model``'s training for round ``k`` (and training ``seed``, when there are several) begins."""
        self.done += 1
        which = f", seed {seed}" if seed is not None else ""
        logger.info("[%d/%d] %s, fold %d of %d%s: training (log: %s)", self.done, self.total, model, k + 1,
                    self.n_rounds, which, log)

    def finished(self, model: str, seconds: float, ran: bool) -> None:
        """Record the training just started; log its time and the time left when it ran now."""
        if not ran:
            return
        self.seconds.append(seconds)
        left = (self.total - self.done) * sum(self.seconds) / len(self.seconds) / 60
        logger.info("[%d/%d] %s trained in %.1f min; at most about %.0f min of training left", self.done, self.total,
                    model, seconds / 60, left)

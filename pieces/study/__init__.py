"""The numerical study: experiments over a grid of configs, into a resumable run dir."""

from .grid import EXPERIMENTS, SIZES, default_settings, make_tasks
from .outcomes import OUTCOMES
from .runner import StudyError, run_study
from .tasks import COLUMNS, run_task

__all__ = ["EXPERIMENTS", "SIZES", "OUTCOMES", "default_settings", "make_tasks", "run_study", "run_task",
           "StudyError", "COLUMNS"]

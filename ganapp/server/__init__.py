"""The job server, split by concern (STYLE habits 8, 17, 18):

- limits:   what the server allows (GANAPP_* variables) and the check of a config before work
- tokens:   visitor tokens the server issues and checks
- messages: the typed messages a job sends
- backend:  the seam between the manager and where jobs run (local processes by default)
- records:  run records on disk, so a restarted server lists every run again
- manager:  runs, fair queue, state changes, the pump

Nothing here imports torch or gradio.
"""

from .limits import JobError, LimitError, Limits, SettingsError, available_cores
from .manager import ACTIVE_STATES, ENDED_STATES, JobManager, Run, RunNotFound
from .records import DISPLAY_ROWS_CAP, LOSS_COLUMNS
from .tokens import check_token_format

__all__ = ["ACTIVE_STATES", "DISPLAY_ROWS_CAP", "ENDED_STATES", "JobError", "JobManager", "LOSS_COLUMNS",
           "LimitError", "Limits", "Run", "RunNotFound", "SettingsError", "available_cores", "check_token_format"]

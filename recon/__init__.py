"""recon: reconcile a training provider's records with the LMS's learning-path progress,
and post the approved corrections to the LMS, paced, recorded and resumable."""

from .config import Config, load_config
from .engine import proposal_key, reconcile
from .errors import ReconError
from .ledger import Ledger
from .pipeline import reconcile_run
from .result import Result

__all__ = [
    "Config",
    "Ledger",
    "ReconError",
    "Result",
    "load_config",
    "proposal_key",
    "reconcile",
    "reconcile_run",
]
__version__ = "0.1.0"

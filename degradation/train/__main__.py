"""`python -m degradation.train overrides...`: one run, the same as `degradation train`."""

import sys

from degradation.train.app import run_from_args
from degradation.train.lifeline import bind_to_sweep

if __name__ == "__main__":
    bind_to_sweep()  # first: a run whose sweep is gone must not start training
    sys.exit(run_from_args(sys.argv[1:]))

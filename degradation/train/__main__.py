"""`python -m degradation.train overrides...`: one run, the same as `degradation train`."""

import sys

from degradation.train.app import run_from_args

if __name__ == "__main__":
    sys.exit(run_from_args(sys.argv[1:]))

"""`python -m degradation` is the same as the `degradation` command."""

from degradation.cli import main

main()

"""Errors a user can fix: the CLI prints them as one line and exits 2, with no traceback."""


class UsageError(Exception):
    """Bad input (argument, override, missing data, unwritable folder): says what is wrong and what is right."""

    exit_code = 2


class RunFailed(Exception):
    """A run stopped for a reason recorded in its run.json (NaN loss, crash); the sweep goes on."""

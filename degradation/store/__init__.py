"""The run store: the run folder's format, its lock and atomic writes, the tables' schemas, variants and
collection. One format with one writer (train) and many readers, so both import the same names from here."""

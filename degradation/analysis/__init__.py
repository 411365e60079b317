"""Numbers computed from the collected results: per-run finals, seed statistics, responses, the summary."""

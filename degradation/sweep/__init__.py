"""Sweeps: plan a grid of runs, launch the missing ones (local processes or a SLURM job array), watch, collect.

    plan.py      grid -> composed, validated cells; each run's state from its folder
    estimate.py  parameter counts and time per run (bench.parquet or a short probe)
    launch.py    local process pool;  slurm.py  submitit job array (checkpointable)
    progress.py  the live view from the runs' own files;  report.py  tables and messages
    api.py       SweepRequest.from_cli, run_sweep
"""

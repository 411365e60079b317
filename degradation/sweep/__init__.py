"""Sweeps: plan a grid of runs, launch the missing ones (local processes or a SLURM job array), watch, collect.

    request.py   SweepRequest.from_cli: the flags, each checked with a one-line error
    plan.py      what runs (grid -> composed, validated cells; each run's state) and where (jobs, threads, GPUs)
    estimate.py  parameter counts and every number of time (bench.parquet, bench_share.parquet, a probe)
    launch.py    local process pool;  slurm.py  submitit job array (checkpointable)
    progress.py  the live view from the runs' own files;  report.py  the plan table, messages, `status`
    api.py       run_sweep: plan, launch, collect, report
"""

"""`degradation report`: one self-contained HTML page of a study, and the study as TensorBoard event files.

    write_report("results")            # -> results/report.html (every image inline, no request leaves it)
    export_tensorboard("results")      # -> results/tb/<run_id>/events.out.tfevents.* (tensorboard optional)

The page reuses what `degradation plot` draws and computes (figures/, analysis/summary.judge) and adds what is
recorded but drawn nowhere else: the verdict's gaps, loss and learning rate, the update/weight ratio, bench.
"""

"""One training run: the paper's recipe over a Lightning module, resumable to the exact curve.

Entry points: `app.run_from_args(args)` (the CLI shell) and `run.train(cfg)` (the pure function).

Importing this package (before torch) makes idle OpenMP threads sleep instead of spin, unless the user chose
otherwise: on a CPU shared with other jobs, spinning threads steal the cores the working threads need
(measured here: ResNet-20 at 2 threads went from 0.2 s to 3.2 s a step beside two busy processes; with
OMP_WAIT_POLICY=PASSIVE, 0.5 s; on the idle machine both policies gave 0.2-0.3 s).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

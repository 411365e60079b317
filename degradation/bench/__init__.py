"""Speed measurements: the training step against a bare loop (step), runs sharing a GPU (share), loaders."""

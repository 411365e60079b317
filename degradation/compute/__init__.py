"""Facts about the compute at hand: the machine (cores, device kind, GPUs) and the precision table."""

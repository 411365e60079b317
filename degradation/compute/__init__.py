"""What runs where: the machine (cores, device kind, GPUs), the precision table, how a batch splits among ranks,
and the git revision of the code."""

"""Where torch runs: devices, torchrun (DDP training, seed-split sampling) and thread limits."""

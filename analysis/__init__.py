"""Data loading, streaming statistics, dataset critical times, metrics and output writing (numpy/scipy)."""

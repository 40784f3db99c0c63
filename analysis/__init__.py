"""Data loading, streaming statistics, dataset critical times, metrics and output writing (numpy/scipy)."""
from .critical import DatasetCriticalTimes, dataset_critical_times
from .datasets import BUILTIN_DATASETS, Dataset, load_dataset
from .gls import GaussianStart, empirical_gaussian_start, gaussian_start, noised_data
from .spectrum import CovarianceSpectrum, covariance_spectrum, spectrum_from_moments

__all__ = [
    "DatasetCriticalTimes", "dataset_critical_times",
    "BUILTIN_DATASETS", "Dataset", "load_dataset",
    "GaussianStart", "empirical_gaussian_start", "gaussian_start", "noised_data",
    "CovarianceSpectrum", "covariance_spectrum", "spectrum_from_moments",
]

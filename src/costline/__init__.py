"""costline: cloud cost as an architectural property you can see, test and enforce."""

__version__ = "0.1.0"

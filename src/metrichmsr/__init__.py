"""metrichmsr: metric human mesh and scene recovery from one image (MetricHMSR)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metrichmsr")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["Recoverer", "RecoveryResult", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import metrichmsr` (and `metrichmsr --help`) does not load torch and anny.
    if name in ("Recoverer", "RecoveryResult"):
        from metrichmsr import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)

"""metrichmsr: metric human mesh and scene recovery from one image (MetricHMSR)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metrichmsr")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["PersonResult", "Recoverer", "RecoveryResult", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import metrichmsr` (and `metrichmsr --help`) does not load torch and anny.
    if name == "Recoverer":
        from metrichmsr.pipeline import Recoverer

        return Recoverer
    if name in ("PersonResult", "RecoveryResult"):
        from metrichmsr import result

        return getattr(result, name)
    raise AttributeError(name)

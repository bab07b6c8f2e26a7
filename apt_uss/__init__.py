"""apt-uss: audio prompt tuning (APT) for query-based universal sound separation."""

__version__ = "0.1.0"

"""Using what APT learned: the Python API for separation (``load_separator``) and the tuned prompts as an MLflow
model (``mlflow_model``: logged, registered, served)."""

from apt_uss.serving.separator import PromptSeparator, load_separator

__all__ = ["PromptSeparator", "load_separator"]

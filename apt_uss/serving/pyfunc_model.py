"""The registered model's pyfunc class, logged as code (MLflow's models from code) by
``apt_uss.serving.mlflow_model.log_prompt_model``: it loads the prompt file with the backbone it records and
separates each row's audio (``separate_rows``)."""

import mlflow
import pandas as pd

from apt_uss.serving.mlflow_model import separate_rows
from apt_uss.serving.separator import load_separator


class PromptSeparatorModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.separator = load_separator(context.artifacts["prompts"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return separate_rows(self.separator, model_input)


mlflow.models.set_model(PromptSeparatorModel())

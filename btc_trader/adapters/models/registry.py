"""Model names (`mlModels`) -> predictors, from a function's runtime config."""

from __future__ import annotations

from collections.abc import Sequence

from btc_trader.adapters.models.bedrock import BedrockConversePredictor
from btc_trader.adapters.models.sagemaker import SageMakerChronosPredictor
from btc_trader.domain.prediction.model import PricePredictor
from btc_trader.domain.prediction.technical import TechnicalModel
from btc_trader.runtime_config import PredictorConfig

KNOWN_MODELS = ("bedrock", "huggingface", "custom")


def build_predictors(models: Sequence[str], config: PredictorConfig) -> list[PricePredictor]:
    """One predictor per enabled model; a model without its endpoint/id configured is an error."""
    predictors: list[PricePredictor] = []
    for model in models:
        if model == "custom":
            predictors.append(TechnicalModel())
        elif model == "bedrock":
            if not config.bedrock_model_id:
                raise ValueError("model 'bedrock' is enabled but BTC_TRADER_BEDROCK_MODEL_ID is not set")
            predictors.append(BedrockConversePredictor(
                config.bedrock_model_id, max_tokens=config.bedrock_max_tokens, timeout_s=config.bedrock_timeout_seconds
            ))
        elif model == "huggingface":
            if not config.sagemaker_endpoint:
                raise ValueError("model 'huggingface' is enabled but BTC_TRADER_SAGEMAKER_ENDPOINT is not set")
            predictors.append(SageMakerChronosPredictor(config.sagemaker_endpoint, timeout_s=config.sagemaker_timeout_seconds))
        else:
            raise ValueError(f"unknown model {model!r}; known: {', '.join(KNOWN_MODELS)}")
    if not predictors:
        raise ValueError("no model enabled")
    return predictors

"""btc-trader stack: settings -> names -> components -> exports. No resource logic here."""

import pulumi
import pulumi_aws as aws

from btc_trader.stack.environment import (
    ML_PREDICTOR,
    PREDICTION_EVALUATOR,
    PRICE_COLLECTOR,
    RISK_MANAGER,
    TRADE_EXECUTOR,
)
from btc_trader.stack.naming import ResourceNames
from components.data_ingestion import DataIngestion, DataIngestionArgs
from components.lambda_packaging import dependency_layer, powertools_layer_arn, stack_artifacts
from components.ml_prediction import MlPrediction, MlPredictionArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.stack_config import load_settings
from components.trading_engine import TradingEngine, TradingEngineArgs

settings = load_settings()
names = ResourceNames(
    stack=pulumi.get_stack(),
    account_id=aws.get_caller_identity().account_id,
    region=aws.get_region().region,
)

# `btc-trader build`'s output (built here when missing or stale): each function's own bundle.
code = stack_artifacts(settings)
dependencies = dependency_layer(f"{names.prefix}-dependencies", code, settings.lambda_settings, names)
layers = [powertools_layer_arn(settings.lambda_settings), dependencies.arn]

network = Network("network", NetworkArgs(settings=settings, names=names)) if settings.network.vpc else None
vpc = network.placement if network else None

ingestion = DataIngestion(
    "ingestion", DataIngestionArgs(settings=settings, names=names, code=code, layers=layers, vpc=vpc)
)

prediction = MlPrediction(
    "prediction",
    MlPredictionArgs(
        settings=settings, names=names, code=code, layers=layers,
        prices_table_arn=ingestion.prices_table.arn, vpc=vpc,
    ),
)

trading = TradingEngine(
    "trading",
    TradingEngineArgs(
        settings=settings, names=names, code=code, layers=layers,
        predictor_function=prediction.predictor.function, vpc=vpc,
    ),
)

monitoring = Monitoring(
    "monitoring",
    MonitoringArgs(
        settings=settings, names=names, alerts_topic_arn=trading.topic.arn,
        functions={
            PRICE_COLLECTOR: ingestion.collector.function,
            ML_PREDICTOR: prediction.predictor.function,
            PREDICTION_EVALUATOR: prediction.evaluator.function,
            RISK_MANAGER: trading.risk_manager.function,
            TRADE_EXECUTOR: trading.executor.function,
        },
        state_machine=trading.state_machine,
    ),
)

pulumi.export("region", names.region)
pulumi.export("pricesTable", ingestion.prices_table.name)
pulumi.export("rawBucket", ingestion.raw_bucket.bucket)
pulumi.export("priceCollectorFunction", ingestion.collector.function.name)
pulumi.export("priceCollectionSchedule", ingestion.schedule.schedule_expression)
pulumi.export("timestreamEnabled", settings.timestream.enabled)
pulumi.export("predictionsTable", prediction.predictions_table.name)
pulumi.export("mlPredictorFunction", prediction.predictor.function.name)
pulumi.export("predictionEvaluatorFunction", prediction.evaluator.function.name)
pulumi.export("chronosEndpoint", prediction.endpoint.name if prediction.endpoint else None)
pulumi.export("tradingWorkflow", trading.state_machine.name)
pulumi.export("alertsTopic", trading.topic.arn)
pulumi.export("tradingMode", "live" if settings.enable_real_trading else "paper")
pulumi.export("dashboardUrl", monitoring.dashboard_url)
pulumi.export("alarms", [alarm.name for alarm in monitoring.alarms.values()])
pulumi.export("vpc", network.vpc.id if network else None)

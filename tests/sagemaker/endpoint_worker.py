"""Runs inside the throwaway venv of `make chronos-proof` (the endpoint image's library versions),
never in the project's venv: serve requests the way the endpoint's model worker does.

1. Build a tiny, randomly initialised Chronos-Bolt model from a config (no hub download) and
   save it into the model directory beside the archive's code/, as a model archive with baked
   weights would carry it.
2. Load it with multi-model-server's own model loader and the Hugging Face inference toolkit's
   handler service (the image's `default_service_handler`): the toolkit puts code/ on sys.path,
   imports inference.py and calls its model_fn.
3. Send each request through MMS's `Service.predict`, the worker's entry for a batch, and record
   the status code, message and body the worker would hand back to the front end.

Usage:
  python endpoint_worker.py install MODEL_DIR
      the container's start-up step: sagemaker-inference's own `_install_requirements` on
      MODEL_DIR/code/requirements.txt (the toolkit calls it before starting the model server)
  python endpoint_worker.py serve MODEL_DIR REQUESTS_JSON OUT_JSON
      REQUESTS_JSON holds a list of request bodies (JSON values); OUT_JSON receives
      {"model": {...tiny model facts...}, "responses": [{"code", "message", "body"}, ...]}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HANDLER = "sagemaker_huggingface_inference_toolkit.handler_service"
MODEL_NAME = "model"  # the toolkit's DEFAULT_MMS_MODEL_NAME
CONTEXT_LENGTH = 64
TRAINED_HORIZON = 16
TRAINED_QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def save_tiny_chronos_bolt(model_dir: Path) -> dict:
    """A 2-layer Chronos-Bolt with random weights, except a quantile head with known offsets.

    The head's final layers are zeroed and their bias set to (q - 0.5) per quantile, so every
    forecast step is loc + (q - 0.5) * scale of the context's instance norm: quantiles ordered
    and predictable, while the encoder and decoder stay randomly initialised.
    """
    import torch
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    torch.manual_seed(0)
    config = T5Config(
        d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2, num_decoder_layers=2,
        dense_act_fn="relu", feed_forward_proj="relu", dropout_rate=0.0, vocab_size=2,
        pad_token_id=0, decoder_start_token_id=0, is_encoder_decoder=True,
        architectures=["ChronosBoltModelForForecasting"],
        chronos_pipeline_class="ChronosBoltPipeline",
        chronos_config={
            "context_length": CONTEXT_LENGTH, "prediction_length": TRAINED_HORIZON,
            "input_patch_size": 16, "input_patch_stride": 16,
            "quantiles": TRAINED_QUANTILES, "use_reg_token": True,
        },
    )
    model = ChronosBoltModelForForecasting(config)
    head = model.output_patch_embedding
    with torch.no_grad():
        for layer in (head.output_layer, head.residual_layer):
            layer.weight.zero_()
            layer.bias.zero_()
        offsets = torch.tensor([q - 0.5 for q in TRAINED_QUANTILES]).repeat_interleave(TRAINED_HORIZON)
        head.residual_layer.bias.copy_(offsets)
    model.save_pretrained(model_dir)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "context_length": CONTEXT_LENGTH,
        "trained_horizon": TRAINED_HORIZON,
        "files": sorted(p.name for p in model_dir.iterdir()),
    }


def serve(model_dir: Path, bodies: list) -> list[dict]:
    """Load through MMS's model loader and answer each body through the worker's Service."""
    import mms.service
    from mms.model_loader import ModelLoaderFactory

    service = ModelLoaderFactory.get_model_loader(str(model_dir)).load(
        MODEL_NAME, str(model_dir), HANDLER, gpu_id=None, batch_size=1)
    handler = service._entry_point.__self__  # noqa: SLF001 - the toolkit's HuggingFaceHandlerService
    if not handler.initialized:
        raise SystemExit("the toolkit's handler service failed to initialise (model_fn); see the log above")

    sent: list[dict] = []

    def capture(ret, req_id_map, message, code, context=None):
        body = ret[0] if ret else None
        sent.append({"code": code, "message": message,
                     "body": body.decode() if isinstance(body, bytes) else body})
        return b""

    mms.service.create_predict_response = capture  # what the worker would send to the front end
    for i, body in enumerate(bodies):
        service.predict([{
            "requestId": f"proof-{i}".encode(),
            "headers": [{"name": b"Content-Type", "value": b"application/json"},
                        {"name": b"Accept", "value": b"application/json"}],
            "parameters": [{"name": "body", "contentType": "application/json",
                            "value": json.dumps(body).encode()}],
        }])
    return sent


def install_requirements(model_dir: Path) -> None:
    """Run the start-up install exactly as the container does, on this model directory."""
    from sagemaker_inference import model_server

    model_server.REQUIREMENTS_PATH = str(model_dir / "code" / "requirements.txt")
    model_server._install_requirements()  # noqa: SLF001 - the step under test


def main(argv: list[str]) -> None:
    command, model_dir = argv[1], Path(argv[2])
    if command == "install":
        install_requirements(model_dir)
    elif command == "serve":
        requests_path, out_path = Path(argv[3]), Path(argv[4])
        facts = save_tiny_chronos_bolt(model_dir)
        responses = serve(model_dir, json.loads(requests_path.read_text()))
        out_path.write_text(json.dumps({"model": facts, "responses": responses}))
    else:
        raise SystemExit(f"unknown command {command!r}: install or serve")


if __name__ == "__main__":
    main(sys.argv)

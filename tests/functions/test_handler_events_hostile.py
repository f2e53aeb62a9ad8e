"""Hostile handler events: each is refused at the boundary with the field named, or is sane.

The collector, predictor and evaluator parse their events with Powertools' parser into the
models below, exactly as their `@event_parser` does (the handler tests check the wiring); a refused event raises pydantic's
ValidationError naming the field, before any clock, store or venue is touched. A sane event
carries a zone-aware time between 1970 and 2100 and, when it names symbols, a non-empty list of
`BASE-QUOTE` symbols, each of which the handler then checks against the stack's configuration.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser import parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from btc_trader.contracts import WorkflowInput
from btc_trader.event_fields import (
    MAX_EPOCH_S,
    SYMBOL_PATTERN,
    CollectionEvent,
    EvaluationEvent,
    UnknownSymbolError,
    parse_event_time,
    require_configured,
)
from tests.hostile import HOSTILE_SCALARS, mutations

HOSTILE_TIMES = st.sampled_from([
    "2023-03-11T12:00:00", "2023-03-11", "2023-02-30T00:00:00Z", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00", "1678536000", "1678536000000", "", " ", "1969-12-31T23:59:59Z",
    "2101-01-01T00:00:00Z", "2023-03-11T25:00:00Z", "2023-03-11T12:00:00+25:00", "now", "yesterday",
    "2023-03-11T12:00:00Z" * 3, "2023-13-01T00:00:00Z", "12:00:00Z",
])
HOSTILE_SYMBOLS = st.sampled_from([
    [], [""], [" "], ["btc usd!"], ["BTC-USD", "BTC-USD"], ["X" * 5000], ["BTC_USD"], ["btc-usd"], ["BTC-"],
    ["-USD"], ["BTC-USD-EUR"], "BTC-USD", [None], [1], ["BTC-USD\n"], ["B-U"],
])
SCHEDULED = {"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
             "time": "2023-03-11T12:00:00Z", "symbols": ["BTC-USD"], "detail": {}}
WORKFLOW = {"symbol": "BTC-USD", "execution_id": "exec-1", "requested_at": "2023-03-11T12:00:00Z"}
MODELS = {"collector": CollectionEvent, "evaluator": EvaluationEvent}
EXAMPLES = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])


def _hostile_values():
    return st.one_of(HOSTILE_SCALARS, HOSTILE_TIMES, HOSTILE_SYMBOLS)


def _check_time(value) -> None:
    assert value.tzinfo is not None and value.utcoffset().total_seconds() == 0
    assert 0 <= value.timestamp() < MAX_EPOCH_S


@pytest.mark.parametrize("handler", sorted(MODELS))
@EXAMPLES
@given(data=st.data())
def test_scheduled_event_broken_once_is_refused_or_sane(handler, data):
    event = data.draw(st.one_of(mutations(SCHEDULED, _hostile_values()), _hostile_values()))
    try:
        parsed = parse(event=event, model=MODELS[handler])
    except ValidationError as exc:
        assert exc.errors(), "a refusal names its field"
        return
    _check_time(parsed.time)
    if parsed.symbols is not None:
        assert parsed.symbols and len(set(parsed.symbols)) == len(parsed.symbols)
        assert all(isinstance(s, str) and len(s) <= 21 for s in parsed.symbols)


@EXAMPLES
@given(data=st.data())
def test_workflow_input_broken_once_is_refused_or_sane(data):
    event = data.draw(st.one_of(mutations(WORKFLOW, _hostile_values()), _hostile_values()))
    try:
        parsed = parse(event=event, model=WorkflowInput)
    except ValidationError as exc:
        assert exc.errors()
        return
    import re

    assert re.fullmatch(SYMBOL_PATTERN, parsed.symbol)
    assert parsed.requested_at.endswith("Z")
    _check_time(parse_event_time(parsed.requested_at))
    assert 1 <= len(parsed.execution_id) <= 80


@settings(max_examples=30)
@given(value=HOSTILE_TIMES)
def test_impossible_or_zoneless_times_are_refused_everywhere(value):
    for model, event in ((CollectionEvent, {**SCHEDULED, "time": value}),
                         (EvaluationEvent, {**SCHEDULED, "time": value}),
                         (WorkflowInput, {**WORKFLOW, "requested_at": value})):
        with pytest.raises(ValidationError):
            parse(event=event, model=model)


@pytest.mark.parametrize("symbols", [[], ["BTC-USD", "BTC-USD"], ["X" * 5000], ["btc usd!"]])
def test_symbol_lists_that_would_mean_all_or_reach_dynamodb_are_refused(symbols):
    with pytest.raises(ValidationError, match="symbols"):
        parse(event={**SCHEDULED, "symbols": symbols}, model=CollectionEvent)


def test_offsets_are_read_as_what_they_say():
    parsed = parse(event={**SCHEDULED, "time": "2023-03-11T13:00:00+01:00"}, model=CollectionEvent)
    assert parsed.time.isoformat() == "2023-03-11T12:00:00+00:00" and parsed.time.tzinfo is UTC
    workflow = parse(event={**WORKFLOW, "requested_at": "2023-03-11T07:00:00-05:00"}, model=WorkflowInput)
    assert workflow.requested_at == "2023-03-11T12:00:00Z"


def test_configured_symbols_only():
    assert require_configured(None, ("BTC-USD", "ETH-USD")) == ["BTC-USD", "ETH-USD"]
    assert require_configured(["ETH-USD"], ("BTC-USD", "ETH-USD")) == ["ETH-USD"]
    with pytest.raises(UnknownSymbolError, match=r"\['SOL-USD'\] are not configured"):
        require_configured(["SOL-USD"], ("BTC-USD",))


def test_the_handlers_parse_these_models():
    # The models above are the ones the handlers' @event_parser uses (their own tests call them).
    for module, model in (("price_collector", "CollectionEvent"), ("prediction_evaluator", "EvaluationEvent"),
                          ("ml_predictor", "WorkflowInput")):
        source = (Path(__file__).resolve().parents[2] / "functions" / f"{module}.py").read_text()
        assert f"@event_parser(model={model})" in source

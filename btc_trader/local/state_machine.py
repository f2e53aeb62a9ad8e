"""A fast executor of Amazon States Language definitions, for `local run`'s replays.

`local run` used to hand every decision to moto's Step Functions in the emulator: a start, a
poll every 20 ms, an ASL parse per execution, and each Lambda task sent from the emulator to the
runner's Lambda server over HTTP. That orchestration cost the emulator more CPU than the storage
the handlers use. This module executes the *same definition* (read from the emulator, which a
test proves equal to what `pulumi up` deploys) in the runner, calling the same handlers through
the same invocation path; the parity tests run both executors on the same events and replays
and compare decisions, outputs, visited states, alerts and the wallet.

It implements the Amazon States Language as AWS documents it, for the state types and fields
the trading workflow uses and their close relatives: Pass, Task, Choice, Succeed and Fail;
InputPath, Parameters, ResultSelector, ResultPath and OutputPath; the context object (`$$.`);
Retry (ErrorEquals, MaxAttempts, IntervalSeconds, BackoffRate, MaxDelaySeconds) and Catch;
`States.ALL`, `States.TaskFailed`, `States.Timeout`, `States.Runtime`, `States.NoChoiceMatched`;
the intrinsic functions States.Format, States.JsonToString, States.StringToJson and States.Array.
Anything else (Map, Parallel, Wait, other intrinsics, `.waitForTaskToken`) is refused when the
definition is loaded, naming the state and the field, so nothing runs half-understood; moto's
executor (`local run --executor emulator`) runs those.

As in the emulator, the wait between retries is computed and recorded but not slept: a replay
runs as fast as it can. A task's TimeoutSeconds is checked when the task returns (the worker's
own Lambda timeout, shorter by design, ends a hung handler first).
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SUPPORTED_TYPES = {"Pass", "Task", "Choice", "Succeed", "Fail"}
COMMON_FIELDS = {"Type", "Comment", "Next", "End", "InputPath", "OutputPath"}
FIELDS = {
    "Pass": COMMON_FIELDS | {"Parameters", "Result", "ResultPath"},
    "Task": COMMON_FIELDS | {"Resource", "Parameters", "ResultSelector", "ResultPath", "TimeoutSeconds", "Retry",
                             "Catch"},
    "Choice": {"Type", "Comment", "InputPath", "OutputPath", "Choices", "Default"},
    "Succeed": {"Type", "Comment", "InputPath", "OutputPath"},
    "Fail": {"Type", "Comment", "Error", "Cause", "ErrorPath", "CausePath"},
}
RETRY_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "Comment"}
CATCH_FIELDS = {"ErrorEquals", "ResultPath", "Next", "Comment"}
SERVICE_RESOURCE = re.compile(r"^arn:aws:states:::(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z]+)$")
LAMBDA_RESOURCE = re.compile(r"^arn:aws[a-z-]*:lambda:[^:]+:\d+:function:[^:]+(:[^:]+)?$")
MAX_TRANSITIONS = 1000  # a definition that loops without end fails instead of hanging the run


class DefinitionNotSupported(ValueError):
    """The definition uses something this executor does not implement; the message names it."""


class StatesError(Exception):
    """An error the state machine can Retry and Catch, named as Step Functions names it."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


class StatesRuntimeError(StatesError):
    """A States.Runtime error (a path that does not resolve, ...): never retried nor caught."""

    def __init__(self, cause: str) -> None:
        super().__init__("States.Runtime", cause)


@dataclass
class HistoryEvent:
    kind: str  # StateEntered, TaskFailed, RetryScheduled, Caught, ExecutionFailed, ExecutionSucceeded
    state: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExecutionResult:
    name: str
    status: str  # SUCCEEDED | FAILED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[HistoryEvent] = field(default_factory=list)

    @property
    def visited(self) -> list[str]:
        """The states the execution entered, in order (as `get_execution_history` lists them)."""
        return [e.state for e in self.history if e.kind == "StateEntered"]

    def failure_cause(self) -> str:
        """The first task failure, as "error: cause" (the execution's own error when none)."""
        for event in self.history:
            if event.kind == "TaskFailed":
                return f"{event.detail['error']}: {event.detail['cause']}"
        return f"{self.error}: {self.cause}" if self.error else "unknown failure"


# A Lambda task: (function ARN, payload) -> the function's result; raises StatesError on failure.
LambdaInvoker = Callable[[str, Any], Any]
# A service integration: (service, action, parameters) -> the API's response; raises StatesError.
ServiceCaller = Callable[[str, str, dict[str, Any]], Any]


def lambda_error(body: dict[str, Any]) -> StatesError:
    """A function's unhandled error as Step Functions names it: its errorType; the payload is the cause."""
    return StatesError(str(body.get("errorType") or "Exception"), json.dumps(body, separators=(",", ":")))


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# ---- paths -----------------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"\.(?P<name>[A-Za-z0-9_@$-]+)|\[(?P<index>\d+)\]|\['(?P<quoted>[^']*)'\]")
_MISSING = object()


def _path_steps(path: str) -> list[str | int]:
    if not path.startswith("$"):
        raise StatesRuntimeError(f"{path!r} is not a JSONPath (it must start with $)")
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None:
            raise DefinitionNotSupported(f"the JSONPath {path!r} uses syntax this executor does not implement "
                                         "(filters, wildcards, slices); use --executor emulator")
        if match["index"] is not None:
            steps.append(int(match["index"]))
        else:
            steps.append(match["name"] if match["name"] is not None else match["quoted"])
        position = match.end()
    return steps


def _lookup(document: Any, path: str) -> Any:
    """The value at `path` in `document`; _MISSING when absent."""
    value = document
    for step in _path_steps(path):
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return _MISSING
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return _MISSING
            value = value[step]
    return value


def _select(document: Any, path: str, context: dict[str, Any], where: str) -> Any:
    """A Path or a context path (`$$.`): a States.Runtime error when it does not resolve."""
    value = _lookup(context, path[1:]) if path.startswith("$$") else _lookup(document, path)
    if value is _MISSING:
        raise StatesRuntimeError(f"{where}: the JSONPath {path!r} could not be found in the input "
                                 f"{json.dumps(document)[:500]}")
    return value


def _place(document: Any, result: Any, result_path: str | None) -> Any:
    """ResultPath: the result placed into the state's input (null discards it, $ replaces it)."""
    if result_path is None:
        return document
    steps = _path_steps(result_path)
    if not steps:
        return result
    root = copy.deepcopy(document) if isinstance(document, dict) else {}
    node = root
    for step in steps[:-1]:
        if isinstance(step, int):
            raise DefinitionNotSupported(f"ResultPath {result_path!r}: array indexes are not supported")
        child = node.get(step)
        if not isinstance(child, dict):
            child = node[step] = {}
        node = child
    last = steps[-1]
    if isinstance(last, int):
        raise DefinitionNotSupported(f"ResultPath {result_path!r}: array indexes are not supported")
    node[last] = result
    return root


# ---- intrinsic functions ---------------------------------------------------------------------

_INTRINSICS = {"States.Format", "States.JsonToString", "States.StringToJson", "States.Array"}


class _IntrinsicParser:
    """A recursive-descent reader of one intrinsic call, e.g. States.Format('lease#{}', $.symbol)."""

    def __init__(self, text: str) -> None:
        self.text, self.position = text, 0

    def _skip(self) -> None:
        while self.position < len(self.text) and self.text[self.position] == " ":
            self.position += 1

    def _peek(self) -> str:
        self._skip()
        return self.text[self.position] if self.position < len(self.text) else ""

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise DefinitionNotSupported(f"intrinsic function {self.text!r}: expected {char!r} at {self.position}")
        self.position += 1

    def call(self) -> tuple:
        self._skip()
        match = re.compile(r"States\.[A-Za-z]+").match(self.text, self.position)
        if match is None:
            raise DefinitionNotSupported(f"{self.text!r} is not an intrinsic function call")
        name = match.group()
        if name not in _INTRINSICS:
            raise DefinitionNotSupported(f"intrinsic function {name} is not implemented by this executor "
                                         f"(it implements {', '.join(sorted(_INTRINSICS))}); use --executor emulator")
        self.position = match.end()
        self._expect("(")
        arguments = []
        if self._peek() != ")":
            arguments.append(self.argument())
            while self._peek() == ",":
                self.position += 1
                arguments.append(self.argument())
        self._expect(")")
        return ("call", name, arguments)

    def argument(self) -> tuple:
        char = self._peek()
        if char == "'":
            return ("literal", self._string())
        if char == "$":
            match = re.compile(r"\$\$?[^,)\s]*").match(self.text, self.position)
            assert match is not None
            self.position = match.end()
            return ("path", match.group())
        if self.text.startswith("States.", self.position):
            return self.call()
        match = re.compile(r"-?\d+(\.\d+)?|true|false|null").match(self.text, self.position)
        if match is None:
            raise DefinitionNotSupported(f"intrinsic function {self.text!r}: cannot read the argument at "
                                         f"{self.position}")
        self.position = match.end()
        return ("literal", json.loads(match.group()))

    def _string(self) -> str:
        self.position += 1  # the opening quote
        out = []
        while self.position < len(self.text):
            char = self.text[self.position]
            if char == "\\" and self.position + 1 < len(self.text):
                out.append(self.text[self.position + 1])
                self.position += 2
                continue
            if char == "'":
                self.position += 1
                return "".join(out)
            out.append(char)
            self.position += 1
        raise DefinitionNotSupported(f"intrinsic function {self.text!r}: unterminated string")

    def parse(self) -> tuple:
        node = self.call()
        if self._peek():
            raise DefinitionNotSupported(f"intrinsic function {self.text!r}: unexpected text after the call")
        return node


def _format(template: str, values: list[Any], where: str) -> str:
    pieces = re.split(r"(?<!\\)\{\}", template)
    if len(pieces) - 1 != len(values):
        raise StatesRuntimeError(f"{where}: States.Format has {len(pieces) - 1} placeholders and {len(values)} "
                                 "values")
    out = pieces[0]
    for value, piece in zip(values, pieces[1:], strict=True):
        out += (value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))) + piece
    return out.replace("\\{", "{").replace("\\}", "}")


def _evaluate_intrinsic(node: tuple, document: Any, context: dict[str, Any], where: str) -> Any:
    kind = node[0]
    if kind == "literal":
        return node[1]
    if kind == "path":
        return _select(document, node[1], context, where)
    _, name, arguments = node
    values = [_evaluate_intrinsic(argument, document, context, where) for argument in arguments]
    if name == "States.Format":
        if not values or not isinstance(values[0], str):
            raise StatesRuntimeError(f"{where}: States.Format takes a template string first")
        return _format(values[0], values[1:], where)
    if name == "States.JsonToString":
        return json.dumps(values[0], separators=(",", ":"))
    if name == "States.StringToJson":
        try:
            return json.loads(values[0])
        except (TypeError, ValueError) as exc:
            raise StatesRuntimeError(f"{where}: States.StringToJson: {exc}") from None
    return values  # States.Array


# ---- payload templates -----------------------------------------------------------------------

def _check_template(template: Any, where: str) -> None:
    """Refuse, at load time, what a template uses and this executor does not implement."""
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise DefinitionNotSupported(f"{where}.{key}: a '.$' field takes a path or an intrinsic call")
                try:
                    if value.startswith("$"):
                        _path_steps(value[1:] if value.startswith("$$") else value)
                    else:
                        _IntrinsicParser(value).parse()
                except (DefinitionNotSupported, StatesRuntimeError) as exc:
                    raise DefinitionNotSupported(f"{where}.{key}: {exc}") from None
            else:
                _check_template(value, f"{where}.{key}")
    elif isinstance(template, list):
        for index, item in enumerate(template):
            _check_template(item, f"{where}[{index}]")


def _apply_template(template: Any, document: Any, context: dict[str, Any], where: str) -> Any:
    """Parameters / ResultSelector: `key.$` fields take a path's value or an intrinsic's result."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                name = key[:-2]
                if value.startswith("$"):
                    out[name] = copy.deepcopy(_select(document, value, context, f"{where}.{key}"))
                else:
                    out[name] = _evaluate_intrinsic(_IntrinsicParser(value).parse(), document, context,
                                                    f"{where}.{key}")
            else:
                out[key] = _apply_template(value, document, context, f"{where}.{key}")
        return out
    if isinstance(template, list):
        return [_apply_template(item, document, context, where) for item in template]
    return copy.deepcopy(template)


# ---- Choice rules ----------------------------------------------------------------------------

_TYPE_TESTS = {
    "IsNull": lambda v: v is None,
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsNumeric": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "IsString": lambda v: isinstance(v, str),
}
_COMPARATORS: dict[str, tuple[Callable[[Any], bool], Callable[[Any, Any], bool]]] = {}
for _prefix, _accepts in (("String", lambda v: isinstance(v, str)),
                          ("Numeric", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
                          ("Timestamp", lambda v: isinstance(v, str))):
    for _suffix, _compare in (("Equals", lambda a, b: a == b), ("LessThan", lambda a, b: a < b),
                              ("GreaterThan", lambda a, b: a > b), ("LessThanEquals", lambda a, b: a <= b),
                              ("GreaterThanEquals", lambda a, b: a >= b)):
        _COMPARATORS[_prefix + _suffix] = (_accepts, _compare)
_COMPARATORS["BooleanEquals"] = (lambda v: isinstance(v, bool), lambda a, b: a == b)


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _string_matches(value: str, pattern: str) -> bool:
    regex = "".join(".*" if part == "*" else re.escape(part.replace("\\*", "*"))
                    for part in re.split(r"(?<!\\)(\*)", pattern))
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _choice_matches(rule: dict[str, Any], document: Any, context: dict[str, Any], where: str) -> bool:
    if "And" in rule:
        return all(_choice_matches(r, document, context, where) for r in rule["And"])
    if "Or" in rule:
        return any(_choice_matches(r, document, context, where) for r in rule["Or"])
    if "Not" in rule:
        return not _choice_matches(rule["Not"], document, context, where)
    variable = rule["Variable"]
    value = _lookup(context, variable[1:]) if variable.startswith("$$") else _lookup(document, variable)
    if "IsPresent" in rule:
        return (value is not _MISSING) == rule["IsPresent"]
    if value is _MISSING:
        raise StatesRuntimeError(f"{where}: Invalid path {variable!r}: the choice state's condition path "
                                 "references an invalid value")
    for test, check in _TYPE_TESTS.items():
        if test in rule:
            return check(value) == rule[test]
    if "IsTimestamp" in rule:
        try:
            _timestamp(value)
            is_timestamp = isinstance(value, str)
        except (TypeError, ValueError):
            is_timestamp = False
        return is_timestamp == rule["IsTimestamp"]
    if "StringMatches" in rule:
        return isinstance(value, str) and _string_matches(value, rule["StringMatches"])
    for operator, (accepts, compare) in _COMPARATORS.items():
        for key in (operator, operator + "Path"):
            if key in rule:
                expected = rule[key]
                if key.endswith("Path"):
                    expected = _select(document, expected, context, where)
                if not (accepts(value) and accepts(expected)):
                    return False
                if operator.startswith("Timestamp"):
                    try:
                        return compare(_timestamp(value), _timestamp(expected))
                    except ValueError:
                        return False
                return compare(value, expected)
    raise DefinitionNotSupported(f"{where}: a choice rule with none of the operators this executor implements: "
                                 f"{sorted(rule)}")


def _rule_paths(rule: dict[str, Any]) -> list[tuple[str, str]]:
    """Every path a choice rule reads (Variable and the *Path operands), nested rules included."""
    nested = rule.get("And", []) + rule.get("Or", []) + ([rule["Not"]] if "Not" in rule else [])
    found = [(key, value) for key, value in rule.items()
             if isinstance(value, str) and (key == "Variable" or key.endswith("Path"))]
    return found + [pair for inner in nested for pair in _rule_paths(inner)]


# ---- errors ------------------------------------------------------------------------------------

def _matches(error: str, error_equals: list[str]) -> bool:
    if error == "States.Runtime":
        return False
    if "States.ALL" in error_equals or error in error_equals:
        return True
    return "States.TaskFailed" in error_equals and error != "States.Timeout"


# ---- the executor ------------------------------------------------------------------------------

class StateMachine:
    """One definition, checked once; `execute` runs an execution of it to its end."""

    def __init__(self, definition: dict[str, Any] | str, invoke_lambda: LambdaInvoker, call_service: ServiceCaller,
                 arn: str = "arn:aws:states:local:123456789012:stateMachine:local",
                 clock: Callable[[], float] = time.time) -> None:
        """`call_service` may say which services it implements with a `supports(service)` method:
        a Task of another service is then refused when the definition is loaded."""
        self.definition = json.loads(definition) if isinstance(definition, str) else definition
        self.invoke_lambda, self.call_service = invoke_lambda, call_service
        self.arn, self.clock = arn, clock
        self._check()

    def _check(self) -> None:
        states = self.definition.get("States")
        start = self.definition.get("StartAt")
        unknown = set(self.definition) - {"StartAt", "States", "Comment", "TimeoutSeconds", "Version"}
        if unknown:
            raise DefinitionNotSupported(f"top-level field(s) {sorted(unknown)} are not implemented by this executor")
        if not isinstance(states, dict) or start not in states:
            raise DefinitionNotSupported(f"StartAt {start!r} names no state of the definition")
        for name, state in states.items():
            kind = state.get("Type")
            if kind not in SUPPORTED_TYPES:
                raise DefinitionNotSupported(f"state {name}: Type {kind!r} is not implemented by this executor "
                                             f"(it runs {', '.join(sorted(SUPPORTED_TYPES))}); use --executor emulator")
            extra = set(state) - FIELDS[kind]
            if extra:
                raise DefinitionNotSupported(f"state {name}: field(s) {sorted(extra)} are not implemented by this "
                                             "executor; use --executor emulator")
            targets = [state.get("Next"), state.get("Default")]
            targets += [c.get("Next") for c in state.get("Choices", []) + state.get("Catch", [])]
            for target in filter(None, targets):
                if target not in states:
                    raise DefinitionNotSupported(f"state {name}: Next {target!r} names no state of the definition")
            paths = [(f, state[f]) for f in ("InputPath", "OutputPath", "ResultPath", "ErrorPath", "CausePath")
                     if isinstance(state.get(f), str)]
            paths += [("Catch.ResultPath", c["ResultPath"]) for c in state.get("Catch", [])
                      if isinstance(c.get("ResultPath"), str)]
            paths += [(f"Choices.{key}", value) for rule in state.get("Choices", []) for key, value in _rule_paths(rule)]
            for path_field, path in paths:
                try:
                    _path_steps(path[1:] if path.startswith("$$") else path)
                except (DefinitionNotSupported, StatesRuntimeError) as exc:
                    raise DefinitionNotSupported(f"state {name}: {path_field}: {exc}") from None
            for template_field in ("Parameters", "ResultSelector"):
                if template_field in state:
                    _check_template(state[template_field], f"{name}.{template_field}")
            for retrier in state.get("Retry", []):
                if set(retrier) - RETRY_FIELDS:
                    raise DefinitionNotSupported(f"state {name}: Retry field(s) {sorted(set(retrier) - RETRY_FIELDS)} "
                                                 "are not implemented by this executor")
            for catcher in state.get("Catch", []):
                if set(catcher) - CATCH_FIELDS:
                    raise DefinitionNotSupported(f"state {name}: Catch field(s) {sorted(set(catcher) - CATCH_FIELDS)} "
                                                 "are not implemented by this executor")
            if kind == "Task":
                resource = state.get("Resource", "")
                service = SERVICE_RESOURCE.match(resource)
                supports = getattr(self.call_service, "supports", lambda _service: True)
                if not (LAMBDA_RESOURCE.match(resource) or (service and supports(service["service"]))):
                    raise DefinitionNotSupported(f"state {name}: Resource {resource!r} is not implemented by this "
                                                 "executor (a Lambda function ARN, or an optimised integration of "
                                                 f"{', '.join(sorted(SERVICE_INTEGRATIONS))}); use --executor "
                                                 "emulator")

    def execute(self, payload: Any, name: str) -> ExecutionResult:
        """Run one execution named `name` with `payload` as its input; never raises for a failed one."""
        started = self.clock()
        result = ExecutionResult(name=name, status="RUNNING")
        execution_arn = self.arn.replace(":stateMachine:", ":execution:") + f":{name}"
        context = {"Execution": {"Id": execution_arn, "Input": copy.deepcopy(payload), "Name": name,
                                 "StartTime": _iso(started)},
                   "StateMachine": {"Id": self.arn, "Name": self.arn.rsplit(":", 1)[-1]},
                   "State": {}}
        states = self.definition["States"]
        current, document = self.definition["StartAt"], copy.deepcopy(payload)
        for _ in range(MAX_TRANSITIONS):
            state = states[current]
            result.history.append(HistoryEvent("StateEntered", current))
            context["State"] = {"Name": current, "EnteredTime": _iso(self.clock()), "RetryCount": 0}
            try:
                next_state, document = self._run_state(current, state, document, context, result)
            except StatesError as failure:
                return self._fail(result, current, failure.error, failure.cause)
            if next_state is None:
                if state["Type"] == "Fail":
                    return self._fail(result, current, document["Error"], document["Cause"])
                result.status, result.output = "SUCCEEDED", document
                result.history.append(HistoryEvent("ExecutionSucceeded", current))
                return result
            current = next_state
        return self._fail(result, current, "States.Runtime",
                          f"more than {MAX_TRANSITIONS} state transitions: the definition loops")

    @staticmethod
    def _fail(result: ExecutionResult, state: str, error: str, cause: str) -> ExecutionResult:
        result.status, result.error, result.cause = "FAILED", error, cause
        result.history.append(HistoryEvent("ExecutionFailed", state, {"error": error, "cause": cause}))
        return result

    def _run_state(self, name: str, state: dict[str, Any], raw: Any, context: dict[str, Any],
                   result: ExecutionResult) -> tuple[str | None, Any]:
        kind = state["Type"]
        if kind == "Fail":
            error = (_select(raw, state["ErrorPath"], context, f"{name}.ErrorPath") if "ErrorPath" in state
                     else state.get("Error", "States.Fail"))
            cause = (_select(raw, state["CausePath"], context, f"{name}.CausePath") if "CausePath" in state
                     else state.get("Cause", ""))
            return None, {"Error": error, "Cause": cause}
        input_path = state.get("InputPath", "$")  # null: the state gets {}
        effective = {} if input_path is None else _select(raw, input_path, context, f"{name}.InputPath")
        if kind == "Choice":
            for rule in state["Choices"]:
                if _choice_matches(rule, effective, context, name):
                    return rule["Next"], self._output(name, state, effective, context)
            if "Default" not in state:
                raise StatesError("States.NoChoiceMatched", f"No Matches! (state {name})")
            return state["Default"], self._output(name, state, effective, context)
        if kind == "Succeed":
            return None, self._output(name, state, effective, context)
        if kind == "Pass":
            if "Parameters" in state:
                effective = _apply_template(state["Parameters"], effective, context, f"{name}.Parameters")
            value = copy.deepcopy(state["Result"]) if "Result" in state else effective
            placed = _place(raw, value, state.get("ResultPath", "$"))
            return self._next(state), self._output(name, state, placed, context)
        # Task
        if "Parameters" in state:
            effective = _apply_template(state["Parameters"], effective, context, f"{name}.Parameters")
        try:
            value = self._run_task(name, state, effective, context, result)
        except StatesRuntimeError:
            raise
        except StatesError as failure:
            for catcher in state.get("Catch", []):
                if _matches(failure.error, catcher["ErrorEquals"]):
                    error_output = {"Error": failure.error, "Cause": failure.cause}
                    result.history.append(HistoryEvent("Caught", name, {"error": failure.error,
                                                                        "next": catcher["Next"]}))
                    return catcher["Next"], _place(raw, error_output, catcher.get("ResultPath", "$"))
            raise
        if "ResultSelector" in state:
            value = _apply_template(state["ResultSelector"], value, context, f"{name}.ResultSelector")
        placed = _place(raw, value, state.get("ResultPath", "$"))
        return self._next(state), self._output(name, state, placed, context)

    @staticmethod
    def _next(state: dict[str, Any]) -> str | None:
        return None if state.get("End") else state["Next"]

    @staticmethod
    def _output(name: str, state: dict[str, Any], document: Any, context: dict[str, Any]) -> Any:
        path = state.get("OutputPath", "$")
        return {} if path is None else _select(document, path, context, f"{name}.OutputPath")

    def _run_task(self, name: str, state: dict[str, Any], payload: Any, context: dict[str, Any],
                  result: ExecutionResult) -> Any:
        """Attempts of one task under its Retry policy; the last failure propagates."""
        attempts: dict[int, int] = {}
        while True:
            try:
                return self._attempt(state, payload)
            except StatesRuntimeError:
                raise
            except StatesError as failure:
                result.history.append(HistoryEvent("TaskFailed", name, {"error": failure.error,
                                                                        "cause": failure.cause}))
                for index, retrier in enumerate(state.get("Retry", [])):
                    if not _matches(failure.error, retrier["ErrorEquals"]):
                        continue
                    done = attempts.get(index, 0)
                    if done >= retrier.get("MaxAttempts", 3):
                        raise
                    wait = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** done
                    if "MaxDelaySeconds" in retrier:
                        wait = min(wait, retrier["MaxDelaySeconds"])
                    attempts[index] = done + 1
                    context["State"]["RetryCount"] = sum(attempts.values())
                    # Recorded, not slept: a local replay runs as fast as it can (as in the emulator).
                    result.history.append(HistoryEvent("RetryScheduled", name, {"error": failure.error,
                                                                                "wait_seconds": wait}))
                    break
                else:
                    raise

    def _attempt(self, state: dict[str, Any], payload: Any) -> Any:
        resource = state["Resource"]
        started = time.monotonic()
        # Each side gets its own copy, as JSON crossing an API would give it.
        sent = json.loads(json.dumps(payload))
        if LAMBDA_RESOURCE.match(resource):
            value = self.invoke_lambda(resource, sent)
        else:
            match = SERVICE_RESOURCE.match(resource)
            assert match is not None  # checked at load
            value = self.call_service(match["service"], match["action"], sent)
        timeout = state.get("TimeoutSeconds")
        if timeout is not None and time.monotonic() - started > timeout:
            raise StatesError("States.Timeout", f"the task ran longer than its TimeoutSeconds ({timeout} s)")
        return json.loads(json.dumps(value))


# ---- service integrations through boto3 --------------------------------------------------------

# Step Functions' optimised integrations this executor calls: service -> (boto3 client, the
# service's name in a task failure's cause, the prefix of its error names).
SERVICE_INTEGRATIONS = {"dynamodb": ("dynamodb", "AmazonDynamoDBv2", "DynamoDB"), "sns": ("sns", "AmazonSNS", "SNS")}


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


class AwsServiceIntegrations:
    """Calls a Task's optimised service integration with boto3, naming failures as Step Functions does.

    The clients are made once, from the environment (in `local run`: the emulator's endpoint).
    """

    def __init__(self, client_factory: Callable[[str], Any] | None = None) -> None:
        if client_factory is None:
            import boto3

            client_factory = boto3.client
        self._client_factory = client_factory
        self._clients: dict[str, Any] = {}

    @staticmethod
    def supports(service: str) -> bool:
        return service in SERVICE_INTEGRATIONS

    def __call__(self, service: str, action: str, parameters: dict[str, Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

        if service not in SERVICE_INTEGRATIONS:
            raise DefinitionNotSupported(f"the {service} integration is not implemented by this executor "
                                         f"(it calls {', '.join(sorted(SERVICE_INTEGRATIONS))})")
        client_name, cause_service, prefix = SERVICE_INTEGRATIONS[service]
        if client_name not in self._clients:
            self._clients[client_name] = self._client_factory(client_name)
        client = self._clients[client_name]
        if service == "sns" and "Message" in parameters and not isinstance(parameters["Message"], str):
            # The optimised integration sends a JSON Message as its string.
            parameters = {**parameters, "Message": json.dumps(parameters["Message"], separators=(",", ":"))}
        try:
            response = getattr(client, _snake(action))(**parameters)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            name = code if service != "sns" or code.endswith("Exception") else code + "Exception"
            metadata = exc.response.get("ResponseMetadata", {})
            raise StatesError(f"{prefix}.{name}", f"{exc.response['Error'].get('Message', '')} (Service: {cause_service}; "
                              f"Status Code: {metadata.get('HTTPStatusCode')}; Error Code: {code}; Request ID: "
                              f"{metadata.get('RequestId')}; Proxy: null)") from None
        except ParamValidationError as exc:
            raise StatesError(f"{prefix}.ValidationException", str(exc)) from None
        except BotoCoreError as exc:  # the endpoint did not answer
            raise StatesError(f"{prefix}.SdkClientException", str(exc)) from None
        except AttributeError:
            raise DefinitionNotSupported(f"{service} has no action {action!r}") from None
        response.pop("ResponseMetadata", None)
        return response

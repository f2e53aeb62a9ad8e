"""Cold-start init time of each function, from its built bundle, in the Lambda runtime's Python.

For every function of the stack, a fresh `python3.12 -I -S` with only what ships on its path
(the bundle unzipped from build/, the dependency layer, the Powertools layer stand-in, boto3)
imports the handler module, as Lambda's INIT phase does; the median of --repeat runs is
reported against the 1 s target. The live executor's ccxt, imported only when it trades live,
is measured apart. Run `make build` first.

    .venv/bin/python benchmarks/cold_start_bench.py [--stack dev] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from btc_trader.build import load_build  # noqa: E402
from btc_trader.build.cli import stack_target  # noqa: E402
from btc_trader.build.runtime import import_bundle, runtime_python  # noqa: E402
from btc_trader.stack.environment import function_environments  # noqa: E402
from btc_trader.stack.naming import ResourceNames  # noqa: E402
from btc_trader.stack.settings import load_stack_file  # noqa: E402

TARGET_S = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    settings = load_stack_file(args.stack, ROOT)
    output = load_build(ROOT, stack_target(settings))
    if output is None:
        print("no build: run `make build` first", file=sys.stderr)
        return 2
    python = runtime_python(output.runtime)
    if python is None:
        print(f"no {output.runtime} interpreter (pyenv install {output.runtime.removeprefix('python')})",
              file=sys.stderr)
        return 2
    names = ResourceNames(args.stack, "123456789012", "us-east-1")
    environments = function_environments(settings, names)
    print(f"cold start (handler module import) from build/{output.target.name} in {python}, "
          f"median of {args.repeat}; target < {TARGET_S:.0f} s")
    print(f"{'function':22s} {'init s':>7s} {'min s':>7s}  within target")
    worst = 0.0
    for function, variables in sorted(environments.items()):
        handler_module = output.functions[function].handler.rpartition(".")[0]
        env = {**variables, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        times = [import_bundle(output, function, env, python, [handler_module]).timings[handler_module]
                 for _ in range(args.repeat)]
        median = statistics.median(times)
        worst = max(worst, median)
        print(f"{function:22s} {median:7.3f} {min(times):7.3f}  {'yes' if median < TARGET_S else 'NO'}")
    executor = output.functions["trade-executor"]
    live = [import_bundle(output, "trade-executor", {"AWS_DEFAULT_REGION": "us-east-1"}, python, ["ccxt"])
            .timings["ccxt"] for _ in range(args.repeat)]
    print(f"{'  + ccxt (live only)':22s} {statistics.median(live):7.3f} {min(live):7.3f}  "
          f"(imported at the first live order, not at init; {len(executor.modules)} modules in the bundle)")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())

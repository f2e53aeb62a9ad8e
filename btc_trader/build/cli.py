"""`btc-trader build [--stack NAME]`: the artifacts `pulumi up` uploads, for the stack's runtime."""

from __future__ import annotations

import argparse
import time

from btc_trader.build import Target, build
from btc_trader.stack.project import find_project_root
from btc_trader.stack.settings import StackSettings, load_stack_file


def stack_target(settings: StackSettings) -> Target:
    """The runtime and architecture the stack's functions run on."""
    return Target(settings.lambda_settings.python_runtime, settings.lambda_settings.architecture)


def cmd_build(args: argparse.Namespace) -> int:
    root = find_project_root()
    started = time.perf_counter()
    targets = []
    for stack in args.stack or ["dev"]:
        target = stack_target(load_stack_file(stack, root))
        if target not in targets:
            targets.append(target)
    for target in targets:
        output = build(root, target, offline=args.offline, echo=print)
        print(f"build/{target.name} ({', '.join(args.stack or ['dev'])}):")
        for line in output.report():
            print(f"  {line}")
    print(f"built in {time.perf_counter() - started:.1f} s")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add `build` to the command line."""
    parser = commands.add_parser("build", help="build each function's bundle and the dependency layer (sam build)")
    parser.add_argument("--stack", action="append",
                        help="stack whose runtime and architecture to build for (repeatable; default dev)")
    parser.add_argument("--offline", action="store_true", help="never run pip; fail if the layer is not cached")
    parser.set_defaults(handler=cmd_build)

"""`btc-trader cost`: a stack's estimated monthly AWS bill, beside the original design's."""

from __future__ import annotations

import argparse
from typing import Any

from btc_trader.cli_support import parse_overrides, print_json

LOCAL_ACCOUNT = "123456789012"  # names only need a shape; no AWS call is made


def estimates(stack: str, overrides: dict[str, str]) -> list[Any]:
    from btc_trader.cost import estimate, original_design
    from btc_trader.stack.naming import ResourceNames
    from btc_trader.stack.settings import load_stack_file, load_stack_with_overrides, stack_region

    settings = load_stack_with_overrides(stack, overrides)
    names = ResourceNames(stack, LOCAL_ACCOUNT, stack_region(stack))
    # The original design is one fixed thing (the seed's prod stack), whatever stack is asked
    # about: the same figure as the README's cost table.
    original, workload = original_design(load_stack_file("prod"))
    original_names = ResourceNames("prod", LOCAL_ACCOUNT, stack_region("prod"))
    return [estimate(settings, names, title=f"{stack} stack"),
            estimate(original, original_names, workload=workload, title="original design")]


def cmd_cost(args: argparse.Namespace) -> int:
    from btc_trader.cost import render_table

    ours, original = estimates(args.stack, parse_overrides(args.set))
    if args.json:
        print_json({"stack": ours.to_json(), "original_design": original.to_json(),
                    "ratio_to_original": round(ours.total / original.total, 4)})
        return 0
    print(render_table([ours, original]))
    print(f"\n{ours.title} costs {ours.total / original.total:.0%} of the original design's "
          f"{original.total:,.2f} USD/month.")
    print("\nwhere the numbers come from:")
    for line in ours.lines:
        print(f"  {line.service:<16} {line.usd:>9.2f}  {line.item}")
    for note in ours.notes:
        print(f"  note: {note}")
    return 0


def register(commands: Any) -> None:
    cost = commands.add_parser("cost", help="estimated monthly AWS cost of a stack, and of the original design")
    cost.add_argument("--stack", default="dev", help="the stack to estimate")
    cost.add_argument("--set", action="append", metavar="KEY=VALUE",
                      help="override a stack key, repeatable (default: none)")
    cost.add_argument("--json", action="store_true", help="print the estimates as JSON")
    cost.set_defaults(handler=cmd_cost)

"""Physical names of every resource of a stack, shared by Pulumi and the local emulator.

Names are explicit (not Pulumi auto-names) so that the emulator, the CLI and the functions'
environment agree with what `pulumi up` creates. S3 names are global, so the raw bucket carries
the account and region.
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECT = "btc-trader"


@dataclass(frozen=True)
class ResourceNames:
    stack: str
    account_id: str
    region: str
    project: str = PROJECT

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    def table(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def function(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    @property
    def raw_bucket(self) -> str:
        return f"{self.prefix}-raw-{self.account_id}-{self.region}"

    @property
    def alerts_topic(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def timestream_database(self) -> str:
        return f"{self.prefix}-market"

    @property
    def timestream_table(self) -> str:
        return "prices"

    @property
    def state_machine(self) -> str:
        return f"{self.prefix}-trading-workflow"

    @property
    def metrics_namespace(self) -> str:
        # One namespace per stack: dev and prod in one account must not share metrics or alarms.
        return f"BtcTrader/{self.stack}"

    @property
    def parameter_path(self) -> str:
        return f"/{self.project}/{self.stack}"

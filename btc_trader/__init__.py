"""btc-trader: ML-assisted Bitcoin trading on AWS, paper-first."""

__version__ = "0.1.0"

"""`python -m btc_trader` is the `btc-trader` command."""

import sys

from btc_trader.cli import main

sys.exit(main())

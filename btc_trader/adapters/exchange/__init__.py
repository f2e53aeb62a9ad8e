"""Exchange adapters: live order execution through ccxt."""

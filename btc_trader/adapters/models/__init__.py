"""Model adapters: each wraps one AWS model service behind the PricePredictor port."""

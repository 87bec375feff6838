"""billfold: Stripe payments into credits, exactly once."""

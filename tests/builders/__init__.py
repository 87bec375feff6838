"""Builders of test inputs: Stripe webhook events (``stripe_events``)."""

"""Revenue from Stripe: customers, a product and price per tier, subscriptions, webhooks, meter events."""

"""Inference with explicit latency budgets and backpressure."""

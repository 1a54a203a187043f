"""What the HTTP service adds around the financial assistant: tenants and their API keys, rate
limits, redaction of customer data from logs and spans, Prometheus metrics and fault injection.

The FastAPI application itself is :mod:`costline.server`; the load-and-fault harness that drives
it is :mod:`costline.loadtest`.
"""

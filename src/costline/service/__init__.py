"""The financial assistant as a multi-tenant HTTP service.

:mod:`~costline.service.app` is the FastAPI application (authentication, rate limits,
isolation, the assistant within each tenant's budget); :mod:`~costline.service.workers` runs
it under uvicorn, in one process or several supervised ones; :mod:`~costline.service.loadtest`
drives it with load and injected faults. Around them: tenants and their API keys, rate limits,
redaction of customer data from logs and spans, Prometheus metrics, fault injection.
"""

"""The HTTP API (FastAPI, versioned under /v1): ingest from EHRs and wearable gateways.

Built in issue #3 on top of ``pathway`` and ``rules``; routes stay thin and call ``pathway.patients``.
"""

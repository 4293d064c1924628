"""The 三高共管 care-pathway domain, one package per concept (docs/adr/0004-layout.md).

clinical/   the care pathway as values and functions: vocabulary, units, history, snapshot, assessment (pure)
ingest/     what EHRs, labs and gateways send: request models, FHIR, case files, recording once, idempotency
patients/   a patient: registration, the stored history read back, reassessment, the year's care plan
referrals/  the two-way referral loop (双向转诊): opened by an assessment, accepted, completed, returned
tasks/      care tasks: sync on each reassessment, the team's outcomes, the daily and hourly runs, flags
teams/      the GP team and its screens: daily list, contact list, patient search, indicators
access/     API keys, roles, gateway links, the audit trail, workbench sessions
runs/       the scheduler's claimed runs and the retention run
store/      engine and sessions, SQLModel tables, shared row shapes and SQL pieces, Alembic migrations
demo/       the synthetic county of ``pathway demo``
cli/        the ``pathway`` command: a composition root, like ``api.main``

Imports flow one way: clinical ← store ← the concept packages ← cli / api / scheduler. A package's SQL
(its ``*_store`` modules) is read only by that package's use-cases.
"""

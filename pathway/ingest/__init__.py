"""What EHRs, labs and gateways send: validated request models, FHIR R4 mapping, the case-file contract
of ``pathway evaluate``, recording each item once, and Idempotency-Key answers."""

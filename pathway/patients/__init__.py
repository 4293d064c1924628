"""A patient: registration, the stored history read back as ``clinical.PatientHistory``, the current
assessment (reassessment, replay), and the annual care plan (年度照护计划)."""

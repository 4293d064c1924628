"""The synthetic county of ``pathway demo``: a distribution table (data) and what an EHR, a lab and a
gateway would have sent for each patient."""

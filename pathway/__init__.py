"""The 三高共管 care-pathway domain: readings, snapshots, targets and assessments."""

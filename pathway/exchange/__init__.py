"""What the pathway shows other systems (issue #17): FHIR R4 read-out and CDS Hooks cards.

``fhir_resources`` and ``cds_cards`` are pure mappings from our values to FHIR / CDS Hooks JSON;
``fhir_search`` parses search parameters and page cursors; ``readout`` is the use-case the routes
call (through the owning packages' use-cases; its own SQL, the pages of readings and team tasks, is
in ``readout_store``).
"""

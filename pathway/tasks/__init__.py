"""Care tasks (PATHWAY.md §5): opened, updated and resolved on every reassessment, acted on by the team
(outcomes, snoozes, reassignments), issued and escalated by the daily and hourly runs, contact flags."""

"""APScheduler 3.x jobs that issue due tasks to GP teams (issue #4): idempotent, claimed in the database."""

"""Events out (issue #17): a transactional outbox written by the use-cases in the transaction of what
caused each event (a tier changed, a referral opened, a task overdue…), webhook subscriptions per
team or for all, and their delivery by the scheduler: signed, in order per patient, retried with
backoff, logged, and a subscription disabled after repeated failures."""

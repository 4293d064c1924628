"""The two-way referral loop (双向转诊): opened from an assessment, accepted, completed and returned,
and the quiet a return keeps until new evidence arrives."""

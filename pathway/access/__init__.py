"""Who may do what, and the record of what they did: API keys and roles, gateway links, the audit
trail, and the workbench's server-side sessions."""

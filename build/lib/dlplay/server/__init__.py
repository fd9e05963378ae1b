"""Many learners on one deployment: the slot pool, the session registry, the guardrails, the admin policy."""

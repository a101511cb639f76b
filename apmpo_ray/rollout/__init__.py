"""The rollout stream: admission under the staleness bound, and the ordered buffer the learner reads."""

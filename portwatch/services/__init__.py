"""Qt without widgets: the sampler thread, the alert service and its back-ends, settings,
exports, the single-instance guard."""

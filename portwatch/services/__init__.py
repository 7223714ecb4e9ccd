"""Qt without widgets: the sampler thread, notifiers, settings, single-instance guard."""

"""Qt without widgets: the sampler thread, notifiers, settings, single-instance guard."""

from portwatch.services.qt_compat import guard_signal_refcounts

# Every Qt user in portwatch imports this package first (the UI builds on it), so the
# binding's signal reference-count defect is guarded before the first signal is emitted.
guard_signal_refcounts()

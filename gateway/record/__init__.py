"""What happened and how much: events, the history of samples, bus counters."""

"""What the stages hand each other: the battery snapshot (sources -> SoC, strategy, outputs),
the decision (strategy -> outputs, node commands), the chemistry's cell specification and
the saved-state base. Plain data and pure functions; imports nothing above it."""

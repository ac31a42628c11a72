"""The configuration: the root schema and loader (root.py), the sections of the gateway's own
parts (sections.py) and the generated reference (doc.py). Each stage keeps its own section
beside its code (soc/settings.py, strategy/settings.py, outputs/inverter/settings.py).

Import from the submodules: this package imports nothing, so a stage can use a section
without loading the root schema."""

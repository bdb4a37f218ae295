"""What every layer shares: errors, progress, text and labelled-data sources.

``pocketbert.converters`` and ``pocketbert.runtimes`` import from here and from nowhere
else in the SDK; nothing here imports torch, a runtime, or any other part of pocketbert.
"""

"""pocketbert: BERT-family models on phones, boards and FPGAs, verified and measured."""
__version__ = "0.1.0"

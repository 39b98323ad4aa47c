"""kanji_lab: train, compare and ship recognisers of handwritten Japanese characters."""

__version__ = "0.1.0"

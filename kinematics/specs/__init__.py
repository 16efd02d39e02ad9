"""Built-in hand specifications (one module per hand)."""

"""Teacher -> student -> distilled -> quantized -> exported file (needs torch)."""

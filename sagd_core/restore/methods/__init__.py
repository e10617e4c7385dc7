"""Restore methods, one module each (notch, DDNM, SAGD fill/denoise, SDEdit baseline), and the
chain helpers they share."""

"""Tables built from the results store only; no metric is recomputed here."""

"""Model construction: the embedded tiny model."""

"""The pure core: mapping, type conversion, filters and replacements. No I/O, no logging of values."""

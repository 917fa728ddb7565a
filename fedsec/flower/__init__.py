"""The only part of the fedsec library that knows Flower: record conversions."""

"""The catalog of district and partner services."""

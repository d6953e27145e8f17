"""Build-time helpers for minidl (not installed with the package)."""

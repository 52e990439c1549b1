"""The caller's own view (``/me``), composed from the domains that know about him."""

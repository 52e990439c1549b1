"""Tables of the study domain."""

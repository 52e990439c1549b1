"""Tables of the mobility domain."""

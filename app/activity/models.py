"""Tables of the activity domain."""

"""Tables of the orders domain."""

"""What a routing transaction reads and writes, behind one interface with two implementations."""

"""The routing domain: who handles which interaction, decided without I/O of its own."""

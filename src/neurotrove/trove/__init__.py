"""The entry object: Trove, connect, and what a trove reads, loads and writes."""

"""crdt package."""

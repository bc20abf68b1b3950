"""netopt package."""

"""ArcFlare service package."""

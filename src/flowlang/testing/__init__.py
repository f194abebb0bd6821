"""Record a run into a cassette, replay it offline, compare what it would send (TESTING.md)."""
